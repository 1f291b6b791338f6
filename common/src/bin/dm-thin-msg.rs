//! dm-thin-msg: drive thin pools through common::dm, for tests and for people debugging pools.
//!
//! Device-changing commands (create-thin, create-snap, delete, send) follow lvm2's transaction
//! rule: the messages are queued on top of the recorded transaction id (`--tid`, default the
//! pool's own), which goes up by one; they are posted during an origin-only suspend of the pool
//! followed by `set_transaction_id N-1 N`. A stale `--tid` is refused before anything is sent.
//!
//! Exit status: 0 done, 1 other error, 2 usage, 3 transaction id mismatch, 4 the kernel refused a
//! message, 5 the pool is failed, read-only or needs a check.

use std::process::{Command, ExitCode};

use common::dm::{
    DeviceRef, DmControl, DmError, DmName, DmUuid, MessageQueue, OriginOnlySuspend, Sectors,
    SuspendFlags, TargetLine, ThinDevId, ThinError, ThinMessage, ThinPool, ThinPoolStatus,
    ThinStatus,
};

const USAGE: &str = "\
usage: dm-thin-msg [options] COMMAND [ARGS...]

thin pools (POOL and DEV are device names or MAJOR:MINOR):
  status [DEV...]                 parse the status of thin-pool and thin devices (all if none given)
  parse thin-pool|thin TEXT       parse a status text (the part after START LENGTH TYPE); no kernel
  create-thin POOL ID             queue and post create_thin ID
  create-snap POOL ID ORIGIN_ID   queue and post create_snap ID ORIGIN_ID (see --origin)
  delete POOL ID                  queue and post delete ID
  send POOL MESSAGE...            queue several messages (\"create_thin 1\" \"delete 2\"), post as one
  reserve-metadata-snap POOL      hold a metadata snapshot (sent at once, no transaction)
  release-metadata-snap POOL      drop it
  set-transaction-id POOL OLD NEW send set_transaction_id OLD NEW at once (debugging)
  stack POOL                      suspended/active state of the pool and its metadata and data devices
device-mapper:
  version | list | info DEV | table DEV | remove DEV | resume DEV
  suspend DEV [--noflush] [--nolockfs]
  create NAME [--uuid UUID] TABLE_LINE...   create, load and resume (\"0 2048 zero\")
  message DEV SECTOR TEXT

options:
  --tid N        transaction id recorded as committed before this change (default: the pool's)
  --origin DEV   thin device to suspend around the messages (an active snapshot origin); repeatable
  --exec CMD     run `sh -c CMD` while the origin-only suspend is in effect
  -h, --help     this help;  -V, --version  the version

exit status: 0 done, 1 error, 2 usage, 3 transaction id mismatch, 4 message refused, 5 pool unusable";

enum Failure {
    Usage(String),
    Dm(DmError),
    Thin(ThinError),
    Other(String),
}

impl From<DmError> for Failure {
    fn from(e: DmError) -> Self {
        Failure::Dm(e)
    }
}

impl From<ThinError> for Failure {
    fn from(e: ThinError) -> Self {
        Failure::Thin(e)
    }
}

type Outcome = Result<(), Failure>;

struct Options {
    tid: Option<u64>,
    origins: Vec<DeviceRef>,
    exec: Option<String>,
    uuid: Option<String>,
    noflush: bool,
    nolockfs: bool,
    args: Vec<String>,
}

fn usage_err<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Usage(msg.into()))
}

fn device(s: &str) -> Result<DeviceRef, Failure> {
    DeviceRef::parse(s).map_err(|e| Failure::Usage(format!("{s}: {e}")))
}

fn number(what: &str, s: &str) -> Result<u64, Failure> {
    s.parse()
        .map_err(|_| Failure::Usage(format!("{what} must be a decimal number, not {s:?}")))
}

fn dev_id(s: &str) -> Result<ThinDevId, Failure> {
    ThinDevId::new(number("a thin device id", s)?).map_err(|e| Failure::Usage(e.to_string()))
}

fn parse_options(argv: &[String]) -> Result<Option<Options>, Failure> {
    let mut o = getopts::Options::new();
    o.optopt("", "tid", "", "N");
    o.optmulti("", "origin", "", "DEV");
    o.optopt("", "exec", "", "CMD");
    o.optopt("", "uuid", "", "UUID");
    o.optflag("", "noflush", "");
    o.optflag("", "nolockfs", "");
    o.optflag("h", "help", "");
    o.optflag("V", "version", "");
    let m = o.parse(argv).map_err(|e| Failure::Usage(e.to_string()))?;
    if m.opt_present("h") {
        println!("{USAGE}");
        return Ok(None);
    }
    if m.opt_present("V") {
        println!("dm-thin-msg {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let tid = m.opt_str("tid").map(|t| number("--tid", &t)).transpose()?;
    let origins = m
        .opt_strs("origin")
        .iter()
        .map(|d| device(d))
        .collect::<Result<_, _>>()?;
    Ok(Some(Options {
        tid,
        origins,
        exec: m.opt_str("exec"),
        uuid: m.opt_str("uuid"),
        noflush: m.opt_present("noflush"),
        nolockfs: m.opt_present("nolockfs"),
        args: m.free,
    }))
}

fn describe_pool(s: &ThinPoolStatus) -> String {
    let u = match s {
        ThinPoolStatus::Fail => return "status=Fail".into(),
        ThinPoolStatus::Error => return "status=Error".into(),
        ThinPoolStatus::Working(u) => u,
    };
    format!(
        "transaction_id={} used_metadata_blocks={} total_metadata_blocks={} used_data_blocks={} \
         total_data_blocks={} held_metadata_root={} mode={} discards={} no_space={} needs_check={} \
         metadata_low_watermark={}",
        u.transaction_id,
        u.used_metadata_blocks,
        u.total_metadata_blocks,
        u.used_data_blocks,
        u.total_data_blocks,
        u.held_metadata_root.map_or("-".into(), |r| r.to_string()),
        u.mode,
        u.discards,
        u.no_space,
        if u.needs_check { "yes" } else { "no" },
        u.metadata_low_watermark
            .map_or("-".into(), |w| w.to_string()),
    )
}

fn describe_thin(s: &ThinStatus) -> String {
    match s {
        ThinStatus::Fail => "status=Fail".into(),
        ThinStatus::Error => "status=Error".into(),
        ThinStatus::Working {
            mapped,
            highest_mapped,
        } => format!(
            "mapped_sectors={} highest_mapped_sector={}",
            mapped,
            highest_mapped.map_or("-".into(), |h| h.to_string())
        ),
    }
}

/// One line per thin-pool or thin target: `NAME TYPE key=value...`.
fn describe_target(line: &TargetLine) -> Result<Option<String>, String> {
    match line.target_type.as_str() {
        "thin-pool" => ThinPoolStatus::parse(&line.params).map(|s| Some(describe_pool(&s))),
        "thin" => ThinStatus::parse(&line.params).map(|s| Some(describe_thin(&s))),
        _ => Ok(None),
    }
    .map_err(|e| e.to_string())
}

fn cmd_status(ctl: &DmControl, names: &[String]) -> Outcome {
    let devices: Vec<(DeviceRef, String)> = if names.is_empty() {
        let mut all = ctl.list()?;
        all.sort_by(|a, b| a.1.cmp(&b.1));
        all.into_iter()
            .map(|(d, n)| (DeviceRef::Dev(d), n))
            .collect()
    } else {
        names
            .iter()
            .map(|n| device(n).map(|d| (d, n.clone())))
            .collect::<Result<_, _>>()?
    };
    let mut bad = 0;
    for (dev, name) in devices {
        let (_, lines) = ctl.status(&dev, false)?;
        for line in &lines {
            match describe_target(line) {
                Ok(Some(text)) => println!("{name} {} {}", line.target_type, text),
                Ok(None) if !names.is_empty() => {
                    println!("{name} {} (not a thin target)", line.target_type)
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("dm-thin-msg: {name}: {e}");
                    bad += 1;
                }
            }
        }
    }
    if bad > 0 {
        return Err(Failure::Other(format!(
            "{bad} status line(s) could not be parsed"
        )));
    }
    Ok(())
}

fn cmd_parse(args: &[String]) -> Outcome {
    let [kind, text @ ..] = args else {
        return usage_err("parse wants thin-pool|thin TEXT");
    };
    let text = text.join(" ");
    let described = match kind.as_str() {
        "thin-pool" => ThinPoolStatus::parse(&text).map(|s| describe_pool(&s)),
        "thin" => ThinStatus::parse(&text).map(|s| describe_thin(&s)),
        other => return usage_err(format!("parse: unknown target {other:?}")),
    };
    println!("{}", described.map_err(|e| Failure::Other(e.to_string()))?);
    Ok(())
}

/// Queues `messages` on the recorded id and posts them under the transaction rule.
fn transaction(
    ctl: &DmControl,
    o: &Options,
    pool_name: &str,
    messages: Vec<ThinMessage>,
) -> Outcome {
    let pool = ThinPool::new(ctl, device(pool_name)?);
    let committed = match o.tid {
        Some(t) => t,
        None => pool.writable_usage()?.transaction_id,
    };
    let mut queue = MessageQueue::new(committed);
    for m in messages {
        queue.push(m).map_err(|e| Failure::Thin(e.into()))?;
    }
    let mut hook = || {
        if let Some(cmd) = &o.exec {
            match Command::new("/bin/sh").arg("-c").arg(cmd).status() {
                Ok(s) if s.success() => {}
                Ok(s) => eprintln!("dm-thin-msg: --exec command ended with {s}"),
                Err(e) => eprintln!("dm-thin-msg: cannot run --exec command: {e}"),
            }
        }
    };
    match pool.commit(&mut queue, &o.origins, &mut hook)? {
        OriginOnlySuspend::MessagesPosted { from, to, posted } => {
            let texts: Vec<String> = posted.iter().map(ToString::to_string).collect();
            println!(
                "{pool_name}: transaction_id {from} -> {to}: {}",
                texts.join(", ")
            );
        }
        OriginOnlySuspend::AlreadyCommitted { transaction_id } => {
            println!("{pool_name}: transaction {transaction_id} already committed; nothing sent");
        }
        OriginOnlySuspend::PoolSuspended => println!("{pool_name}: nothing queued"),
    }
    Ok(())
}

fn cmd_stack(ctl: &DmControl, pool_name: &str) -> Outcome {
    let pool = ThinPool::new(ctl, device(pool_name)?);
    for (dev, info) in pool.stack_info()? {
        match info {
            Some(i) => println!(
                "{dev} {} {}",
                i.name,
                if i.suspended { "suspended" } else { "active" }
            ),
            None => println!("{dev} - not-dm"),
        }
    }
    Ok(())
}

fn cmd_create(ctl: &DmControl, o: &Options, args: &[String]) -> Outcome {
    let [name, lines @ ..] = args else {
        return usage_err("create wants NAME TABLE_LINE...");
    };
    let name = DmName::new(name).map_err(|e| Failure::Usage(e.to_string()))?;
    let uuid = o
        .uuid
        .as_deref()
        .map(DmUuid::new)
        .transpose()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let table = lines
        .iter()
        .map(|l| TargetLine::parse(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if table.is_empty() {
        return usage_err("create wants at least one table line");
    }
    let info = ctl.create(&name, uuid.as_ref())?;
    let dev = DeviceRef::Name(name);
    if let Err(e) = ctl.load(&dev, &table, false).and_then(|_| ctl.resume(&dev)) {
        let _ = ctl.remove(&dev);
        return Err(e.into());
    }
    println!("{} {}", info.dev, dev);
    Ok(())
}

fn run(ctl_open: impl Fn() -> Result<DmControl, DmError>, o: &Options) -> Outcome {
    let Some((command, args)) = o.args.split_first() else {
        return usage_err("no command given");
    };
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            usage_err(format!("{command} wants {n} argument(s)"))
        }
    };
    if command == "parse" {
        return cmd_parse(args);
    }
    let ctl = ctl_open()?;
    let immediate = |msg: ThinMessage| -> Outcome {
        ThinPool::new(&ctl, device(&args[0])?).send_now(msg)?;
        println!("{}: sent \"{msg}\"", args[0]);
        Ok(())
    };
    match command.as_str() {
        "status" => cmd_status(&ctl, args),
        "create-thin" => {
            want(2)?;
            transaction(
                &ctl,
                o,
                &args[0],
                vec![ThinMessage::CreateThin(dev_id(&args[1])?)],
            )
        }
        "create-snap" => {
            want(3)?;
            let m = ThinMessage::CreateSnap {
                id: dev_id(&args[1])?,
                origin: dev_id(&args[2])?,
            };
            transaction(&ctl, o, &args[0], vec![m])
        }
        "delete" => {
            want(2)?;
            transaction(
                &ctl,
                o,
                &args[0],
                vec![ThinMessage::Delete(dev_id(&args[1])?)],
            )
        }
        "send" => {
            let [pool, texts @ ..] = args else {
                return usage_err("send wants POOL MESSAGE...");
            };
            let msgs = texts
                .iter()
                .map(|t| t.parse())
                .collect::<Result<Vec<ThinMessage>, _>>();
            transaction(
                &ctl,
                o,
                pool,
                msgs.map_err(|e| Failure::Usage(e.to_string()))?,
            )
        }
        "reserve-metadata-snap" => {
            want(1).and_then(|_| immediate(ThinMessage::ReserveMetadataSnap))
        }
        "release-metadata-snap" => {
            want(1).and_then(|_| immediate(ThinMessage::ReleaseMetadataSnap))
        }
        "set-transaction-id" => {
            want(3)?;
            let (current, new) = (number("OLD", &args[1])?, number("NEW", &args[2])?);
            immediate(ThinMessage::SetTransactionId { current, new })
        }
        "stack" => want(1).and_then(|_| cmd_stack(&ctl, &args[0])),
        "version" => {
            let v = ctl.version()?;
            println!("{}.{}.{}", v[0], v[1], v[2]);
            Ok(())
        }
        "list" => {
            for (d, n) in ctl.list()? {
                println!("{d} {n}");
            }
            Ok(())
        }
        "info" => {
            want(1)?;
            match ctl.info(&device(&args[0])?)? {
                Some(i) => println!(
                    "name={} uuid={} dev={} state={} read_only={} live_table={} inactive_table={} open_count={} event_nr={} targets={}",
                    i.name,
                    if i.uuid.is_empty() { "-" } else { &i.uuid },
                    i.dev,
                    if i.suspended { "suspended" } else { "active" },
                    i.read_only,
                    i.live_table,
                    i.inactive_table,
                    i.open_count,
                    i.event_nr,
                    i.target_count
                ),
                None => return Err(Failure::Other(format!("{}: no such device", args[0]))),
            }
            Ok(())
        }
        "table" => {
            want(1)?;
            for l in ctl.table(&device(&args[0])?)?.1 {
                println!("{l}");
            }
            Ok(())
        }
        "suspend" => {
            want(1)?;
            ctl.suspend(
                &device(&args[0])?,
                SuspendFlags {
                    noflush: o.noflush,
                    skip_lockfs: o.nolockfs,
                },
            )?;
            Ok(())
        }
        "resume" => {
            want(1).and_then(|_| ctl.resume(&device(&args[0])?).map(drop).map_err(Into::into))
        }
        "remove" => want(1).and_then(|_| ctl.remove(&device(&args[0])?).map_err(Into::into)),
        "create" => cmd_create(&ctl, o, args),
        "message" => {
            want(3)?;
            let out = ctl.message(
                &device(&args[0])?,
                Sectors(number("SECTOR", &args[1])?),
                &args[2],
            )?;
            if let Some(text) = out {
                println!("{text}");
            }
            Ok(())
        }
        other => usage_err(format!("unknown command {other:?}")),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_options(&argv) {
        Ok(None) => Ok(()),
        Ok(Some(o)) => run(DmControl::open, &o),
        Err(e) => Err(e),
    };
    let (code, text) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => (2, format!("{m}\n(dm-thin-msg --help for usage)")),
        Err(Failure::Thin(e @ ThinError::TransactionMismatch { .. })) => (3, e.to_string()),
        Err(Failure::Thin(e @ ThinError::MessageFailed { .. })) => (4, e.to_string()),
        Err(Failure::Thin(e @ ThinError::PoolUnusable { .. })) => (5, e.to_string()),
        Err(Failure::Thin(e)) => (1, e.to_string()),
        Err(Failure::Dm(e)) => (1, e.to_string()),
        Err(Failure::Other(m)) => (1, m),
    };
    eprintln!("dm-thin-msg: {text}");
    ExitCode::from(code)
}
