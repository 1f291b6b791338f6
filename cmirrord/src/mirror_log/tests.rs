use super::*;
use crate::errno::Errno;
use crate::testing::MemDisk;

fn core(args: &str) -> MirrorLog {
    let a = parse_ctr(args.as_bytes()).unwrap();
    MirrorLog::new(&a, None)
}

#[test]
fn ctr_parses_core_and_disk_lines() {
    let a = parse_ctr(b"131072 clustered-disk 253:2 1024 nosync\0").unwrap();
    assert_eq!(a.disk.as_deref(), Some("253:2"));
    assert_eq!(
        (a.region_size, a.region_count, a.sync),
        (1024, 128, SyncMode::NoSync)
    );
    let a = parse_ctr(b"1000 clustered-core 64 block_on_error").unwrap();
    assert_eq!((a.disk, a.region_count, a.block_on_error), (None, 16, true)); // ceil(1000/64)
    for bad in [
        &b""[..],
        b"100",
        b"100 mirror-core 8",
        b"0 clustered-core 8",
        b"100 clustered-core 0",
        b"100 clustered-core",
        b"100 clustered-core 8 sync block_on_error extra",
        b"100 clustered-disk /dev/x",
        b"100 clustered-core  8",
    ] {
        assert!(
            parse_ctr(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        parse_ctr(b"0x100 clustered-core 010").unwrap().region_count,
        32
    );
}

#[test]
fn status_texts_match_c() {
    let l = core("2048 clustered-core 1024");
    assert_eq!(l.status_info().unwrap(), "1 clustered-core");
    assert_eq!(l.status_table().unwrap(), "clustered-core 1024  ");
    let l = core("2048 clustered-core 1024 nosync block_on_error");
    assert_eq!(
        l.status_table().unwrap(),
        "clustered-core 1024 nosync block_on_error "
    );
    let a = parse_ctr(b"2048 clustered-disk 253:2 1024 sync").unwrap();
    let l = MirrorLog::new(&a, Some(Box::new(MemDisk::new(253, 2))));
    assert_eq!(l.status_info().unwrap(), "3 clustered-disk 253:2 A");
    assert_eq!(
        l.status_table().unwrap(),
        "clustered-disk 253:2 1024 sync  "
    );
}

#[test]
fn region_indices_are_bounded() {
    let mut l = core("80 clustered-core 8"); // 10 regions
    l.resume();
    assert_eq!(l.in_sync_query(10), Err(Errno::EINVAL));
    assert!(l.in_sync_query(9).is_ok());
    assert_eq!(l.is_clean(10), Err(Errno::EINVAL));
    assert_eq!(l.mark(&[3, 10], 1), Err(Errno::EINVAL));
    assert!(l.is_clean(3).unwrap() == l.clean_bits.get(3).unwrap()); // nothing applied on error
    assert_eq!(l.clear(&[u64::MAX], 1), Err(Errno::EINVAL));
    assert_eq!(l.set_region_sync(10, true, 1), Err(Errno::EINVAL));
    assert_eq!(l.is_remote_recovering(10), Err(Errno::EINVAL));
}

#[test]
fn mark_and_clear_track_every_node() {
    let mut l = core("80 clustered-core 8 nosync");
    l.resume();
    assert!(l.is_clean(4).unwrap());
    l.mark(&[4], 1).unwrap();
    l.mark(&[4], 2).unwrap();
    assert!(!l.is_clean(4).unwrap());
    l.clear(&[4], 1).unwrap();
    assert!(!l.is_clean(4).unwrap(), "node 2 still has it marked");
    l.clear(&[4], 2).unwrap();
    assert!(l.is_clean(4).unwrap());
    // A region that is not in sync never becomes clean.
    l.set_region_sync(5, false, 1).unwrap();
    l.mark(&[5], 1).unwrap();
    l.clear(&[5], 1).unwrap();
    assert!(!l.is_clean(5).unwrap());
}

#[test]
fn dead_recoverer_region_is_reassigned() {
    let mut l = core("80 clustered-core 8"); // 10 regions, none in sync
    l.resume();
    let r = l.get_resync_work(3).expect("work for node 3");
    assert_eq!(l.get_resync_work(2), None, "node 3 holds region {r}");
    l.forget_recoverer(3); // node 3 died
    assert_eq!(
        l.get_resync_work(2),
        Some(r),
        "the dead node's region goes to node 2"
    );
    l.set_region_sync(r, true, 2).unwrap();
    while let Some(r) = l.get_resync_work(2) {
        l.set_region_sync(r, true, 2).unwrap();
    }
    assert_eq!(l.get_sync_count(), 10);
}

#[test]
fn resync_hands_out_each_region_once_and_completes() {
    let mut l = core("80 clustered-core 8"); // 10 regions, none in sync
    l.resume();
    assert_eq!(l.get_sync_count(), 0);
    let mut seen = vec![];
    loop {
        // another node asking while a region is out gets nothing
        let w = l.get_resync_work(1);
        let Some(r) = w else { break };
        assert_eq!(l.get_resync_work(2), None);
        assert_eq!(
            l.get_resync_work(1),
            Some(r),
            "re-request returns the same region"
        );
        l.set_region_sync(r, true, 1).unwrap();
        seen.push(r);
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(l.get_sync_count(), 10);
    assert!(l.in_sync);
    assert_eq!(l.get_resync_work(1), None);
    assert!(l.in_sync_query(3).unwrap());
}

#[test]
fn remote_recovering_prioritises_regions() {
    let mut l = core("80 clustered-core 8");
    l.resume();
    assert_eq!(l.get_resync_work(1), Some(0));
    assert_eq!(l.is_remote_recovering(7).unwrap(), (true, 0));
    l.set_region_sync(0, true, 1).unwrap();
    assert_eq!(l.get_resync_work(1), Some(7), "priority region first");
    l.set_region_sync(7, true, 1).unwrap();
    assert_eq!(l.get_resync_work(1), Some(1));
    l.presuspend();
    assert_eq!(l.is_remote_recovering(5).unwrap(), (false, 10));
}

#[test]
fn flush_writes_disk_log_only_on_server_and_when_touched() {
    let disk = MemDisk::new(7, 1);
    let a = parse_ctr(b"80 clustered-disk 7:1 8").unwrap();
    let mut l = MirrorLog::new(&a, Some(Box::new(disk.clone())));
    assert_eq!(l.resume(), 0);
    assert_eq!(disk.writes(), 1, "master resume initialises the disk");
    let img = disk.image();
    assert_eq!(&img[0..4], &MIRROR_MAGIC.to_le_bytes());
    assert_eq!(&img[4..8], &2u32.to_le_bytes());
    assert_eq!(&img[8..16], &10u64.to_le_bytes());
    assert_eq!(img.len(), 4096);
    l.flush(true).unwrap();
    assert_eq!(disk.writes(), 1, "nothing touched");
    l.set_region_sync(3, true, 1).unwrap();
    l.mark(&[3], 1).unwrap();
    l.clear(&[3], 1).unwrap();
    l.flush(false).unwrap();
    assert_eq!(disk.writes(), 1, "not the server");
    l.mark(&[3], 1).unwrap();
    l.clear(&[3], 1).unwrap();
    l.flush(true).unwrap();
    assert_eq!(disk.writes(), 2);
    assert_eq!(disk.image()[1024], 0b1000);
    // A new instance reads the clean bits back as sync bits.
    let mut l2 = MirrorLog::new(&a, Some(Box::new(disk.clone())));
    l2.resume();
    assert_eq!(l2.get_sync_count(), 1);
    assert!(l2.in_sync_query(3).unwrap());
}

#[test]
fn disk_write_failure_marks_device_failed() {
    let disk = MemDisk::new(7, 1);
    let a = parse_ctr(b"80 clustered-disk 7:1 8 nosync").unwrap();
    let mut l = MirrorLog::new(&a, Some(Box::new(disk.clone())));
    l.resume();
    disk.fail(true);
    l.mark(&[1], 1).unwrap();
    assert_eq!(l.flush(true), Err(Errno::EIO));
    assert_eq!(l.status_info().unwrap(), "3 clustered-disk 7:1 D");
}

#[test]
fn grown_mirror_gets_new_regions_per_sync_mode() {
    let disk = MemDisk::new(7, 1);
    let small = parse_ctr(b"40 clustered-disk 7:1 8 nosync").unwrap();
    let mut l = MirrorLog::new(&small, Some(Box::new(disk.clone())));
    l.resume();
    let big = parse_ctr(b"80 clustered-disk 7:1 8").unwrap();
    let mut l = MirrorLog::new(&big, Some(Box::new(disk.clone())));
    l.resume();
    assert_eq!(
        l.get_sync_count(),
        5,
        "old regions from disk, new ones need resync"
    );
    assert_eq!(l.get_resync_work(1), Some(5));
}

#[test]
fn resume_override_state_machine() {
    let mut l = core("80 clustered-core 8");
    assert_eq!(l.resume(), 0);
    assert_eq!(l.resume(), 0, "additional resume is logged and ignored");
    l.postsuspend();
    l.left_cluster();
    let mut src = core("80 clustered-core 8 nosync");
    src.resume();
    l.load_checkpoint(
        &src.sync_bits.to_image(),
        &src.clean_bits.to_image(),
        Some((4, 2)),
    )
    .unwrap();
    assert_eq!(l.resume_override, 3);
    assert_eq!(l.resume(), 0);
    assert_eq!(l.get_sync_count(), 10);
    let mut p = core("80 clustered-core 8");
    assert_eq!(
        p.load_checkpoint(&[0; 3], &[0; 4], None),
        Err(Errno::EINVAL)
    );
    assert_eq!(p.resume(), 0);
}
