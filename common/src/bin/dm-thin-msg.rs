//! dm-thin-msg: drive thin pools through common::dm, for tests and for people debugging pools.
//!
//! Device-changing commands (create-thin, create-snap, delete, send) follow lvm2's transaction
//! rule: the messages are queued on top of the recorded transaction id (`--tid`, default the
//! pool's own), which goes up by one; they are posted during an origin-only suspend of the pool
//! followed by `set_transaction_id N-1 N`. A stale `--tid` is refused before anything is sent.
//!
//! Exit status: 0 done, 1 other error, 2 usage, 3 transaction id mismatch, 4 the kernel refused a
//! message, 5 the pool is failed, read-only or needs a check.
#![forbid(unsafe_code)]

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

/// Checks `create NAME [--uuid U] LINE...` before anything is created.
fn create_args(o: &Options, args: &[String]) -> Result<Action, Failure> {
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
        .collect::<Result<Vec<_>, _>>();
    let table = table.map_err(|e| Failure::Usage(e.to_string()))?;
    if table.is_empty() {
        return usage_err("create wants at least one table line");
    }
    Ok(Action::Create { name, uuid, table })
}

fn cmd_create(
    ctl: &DmControl,
    name: DmName,
    uuid: Option<DmUuid>,
    table: &[TargetLine],
) -> Outcome {
    let info = ctl.create(&name, uuid.as_ref())?;
    let dev = DeviceRef::Name(name);
    if let Err(e) = ctl.load(&dev, table, false).and_then(|_| ctl.resume(&dev)) {
        let _ = ctl.remove(&dev);
        return Err(e.into());
    }
    println!("{} {}", info.dev, dev);
    Ok(())
}

/// A command with its arguments checked, before any device is touched.
enum Action {
    Status(Vec<String>),
    Transaction {
        pool: String,
        messages: Vec<ThinMessage>,
    },
    Immediate {
        pool: DeviceRef,
        message: ThinMessage,
    },
    Stack(String),
    Version,
    List,
    Info(DeviceRef),
    Table(DeviceRef),
    Suspend(DeviceRef),
    Resume(DeviceRef),
    Remove(DeviceRef),
    Create {
        name: DmName,
        uuid: Option<DmUuid>,
        table: Vec<TargetLine>,
    },
    Message {
        dev: DeviceRef,
        sector: Sectors,
        text: String,
    },
}

fn parse_action(o: &Options, command: &str, args: &[String]) -> Result<Action, Failure> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            usage_err(format!("{command} wants {n} argument(s)"))
        }
    };
    let dev0 = || device(&args[0]);
    Ok(match command {
        "status" => Action::Status(args.to_vec()),
        "create-thin" => {
            want(2)?;
            let messages = vec![ThinMessage::CreateThin(dev_id(&args[1])?)];
            Action::Transaction {
                pool: args[0].clone(),
                messages,
            }
        }
        "create-snap" => {
            want(3)?;
            let m = ThinMessage::CreateSnap {
                id: dev_id(&args[1])?,
                origin: dev_id(&args[2])?,
            };
            Action::Transaction {
                pool: args[0].clone(),
                messages: vec![m],
            }
        }
        "delete" => {
            want(2)?;
            let messages = vec![ThinMessage::Delete(dev_id(&args[1])?)];
            Action::Transaction {
                pool: args[0].clone(),
                messages,
            }
        }
        "send" => {
            let [pool, texts @ ..] = args else {
                return usage_err("send wants POOL MESSAGE...");
            };
            let messages = texts
                .iter()
                .map(|t| t.parse())
                .collect::<Result<Vec<ThinMessage>, _>>();
            let messages = messages.map_err(|e| Failure::Usage(e.to_string()))?;
            Action::Transaction {
                pool: pool.clone(),
                messages,
            }
        }
        "reserve-metadata-snap" => {
            want(1)?;
            Action::Immediate {
                pool: dev0()?,
                message: ThinMessage::ReserveMetadataSnap,
            }
        }
        "release-metadata-snap" => {
            want(1)?;
            Action::Immediate {
                pool: dev0()?,
                message: ThinMessage::ReleaseMetadataSnap,
            }
        }
        "set-transaction-id" => {
            want(3)?;
            let (current, new) = (number("OLD", &args[1])?, number("NEW", &args[2])?);
            Action::Immediate {
                pool: dev0()?,
                message: ThinMessage::SetTransactionId { current, new },
            }
        }
        "stack" => want(1).map(|_| Action::Stack(args[0].clone()))?,
        "version" => want(0).map(|_| Action::Version)?,
        "list" => want(0).map(|_| Action::List)?,
        "info" => want(1).and_then(|_| dev0()).map(Action::Info)?,
        "table" => want(1).and_then(|_| dev0()).map(Action::Table)?,
        "suspend" => want(1).and_then(|_| dev0()).map(Action::Suspend)?,
        "resume" => want(1).and_then(|_| dev0()).map(Action::Resume)?,
        "remove" => want(1).and_then(|_| dev0()).map(Action::Remove)?,
        "create" => create_args(o, args)?,
        "message" => {
            want(3)?;
            Action::Message {
                dev: dev0()?,
                sector: Sectors(number("SECTOR", &args[1])?),
                text: args[2].clone(),
            }
        }
        other => return usage_err(format!("unknown command {other:?}")),
    })
}

fn execute(ctl: &DmControl, o: &Options, action: Action) -> Outcome {
    match action {
        Action::Status(names) => cmd_status(ctl, &names),
        Action::Transaction { pool, messages } => transaction(ctl, o, &pool, messages),
        Action::Immediate { pool, message } => {
            ThinPool::new(ctl, pool.clone()).send_now(message)?;
            println!("{pool}: sent \"{message}\"");
            Ok(())
        }
        Action::Stack(pool) => cmd_stack(ctl, &pool),
        Action::Version => {
            let v = ctl.version()?;
            println!("{}.{}.{}", v[0], v[1], v[2]);
            Ok(())
        }
        Action::List => {
            for (d, n) in ctl.list()? {
                println!("{d} {n}");
            }
            Ok(())
        }
        Action::Info(dev) => {
            let Some(i) = ctl.info(&dev)? else {
                return Err(Failure::Other(format!("{dev}: no such device")));
            };
            println!(
                "name={} uuid={} dev={} state={} read_only={} live_table={} inactive_table={} \
                 open_count={} event_nr={} targets={}",
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
            );
            Ok(())
        }
        Action::Table(dev) => {
            for l in ctl.table(&dev)?.1 {
                println!("{l}");
            }
            Ok(())
        }
        Action::Suspend(dev) => {
            ctl.suspend(
                &dev,
                SuspendFlags {
                    noflush: o.noflush,
                    skip_lockfs: o.nolockfs,
                },
            )?;
            Ok(())
        }
        Action::Resume(dev) => ctl.resume(&dev).map(drop).map_err(Into::into),
        Action::Remove(dev) => ctl.remove(&dev).map_err(Into::into),
        Action::Create { name, uuid, table } => cmd_create(ctl, name, uuid, &table),
        Action::Message { dev, sector, text } => {
            if let Some(out) = ctl.message(&dev, sector, &text)? {
                println!("{out}");
            }
            Ok(())
        }
    }
}

fn run(o: &Options) -> Outcome {
    let Some((command, args)) = o.args.split_first() else {
        return usage_err("no command given");
    };
    if command == "parse" {
        return cmd_parse(args);
    }
    let action = parse_action(o, command, args)?;
    execute(&DmControl::open()?, o, action)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_options(&argv) {
        Ok(None) => Ok(()),
        Ok(Some(o)) => run(&o),
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
