//! The openers, writers and digests against a real file system.

use super::nofollow::*;
use super::std_fs::*;
use super::*;
use journal::ByteRange;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Every opener, with `openat2` and with the walk.
fn both_ways(check: impl Fn()) {
    check();
    OPENAT2.store(false, Ordering::Relaxed);
    check();
    OPENAT2.store(true, Ordering::Relaxed);
}

#[test]
fn no_opener_follows_a_link_in_any_component() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir(root.join("real")).unwrap();
    fs::write(root.join("real/f"), b"secret").unwrap();
    symlink(root.join("real"), root.join("dir-link")).unwrap();
    symlink(root.join("real/f"), root.join("file-link")).unwrap();
    both_ways(|| {
        assert_eq!(read_small(&root.join("real/f"), 100).unwrap(), b"secret");
        for path in [root.join("dir-link/f"), root.join("file-link")] {
            let e = open_read(&path).unwrap_err();
            assert!(is_symlink_refusal(&e), "{}: {e}", path.display());
        }
        let e = list_dir(&root.join("dir-link")).unwrap_err();
        assert!(is_symlink_refusal(&e), "{e}");
        assert!(metadata(&root.join("file-link"))
            .unwrap()
            .unwrap()
            .is_symlink());
        assert!(metadata(&root.join("dir-link/f")).is_err());
        assert!(metadata(&root.join("missing")).unwrap().is_none());
    });
}

/// A folder whose entries fill the listing's buffer many times over is listed
/// whole, each entry once, with its kind and a regular file's length.
#[test]
fn a_folder_larger_than_the_listing_buffer_is_listed_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..600u64 {
        // Long names: about 250 bytes an entry, 150 KB of entries.
        let name = format!("{i:020}-{}", "x".repeat(220));
        match i % 3 {
            0 => {
                fs::write(root.join(&name), vec![7u8; i as usize]).unwrap();
                expected.insert(name, EntryKind::File(i));
            }
            1 => {
                fs::create_dir(root.join(&name)).unwrap();
                expected.insert(name, EntryKind::Dir);
            }
            _ => {
                symlink("nowhere", root.join(&name)).unwrap();
                expected.insert(name, EntryKind::Symlink);
            }
        }
    }
    let entries = list_dir(root).unwrap();
    assert_eq!(entries.len(), expected.len(), "each entry once");
    let listed: std::collections::BTreeMap<_, _> = entries
        .into_iter()
        .map(|e| (e.name.into_string().unwrap(), e.kind))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn writes_refuse_links_and_leave_their_targets_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let outside = root.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("target"), b"keep me").unwrap();
    fs::create_dir(root.join("d")).unwrap();
    symlink(outside.join("target"), root.join("d/link")).unwrap();
    symlink(&outside, root.join("d/dir-link")).unwrap();
    fs::write(root.join("d/src"), b"0123456789").unwrap();
    both_ways(|| {
        let link = root.join("d/link");
        let fs = StdFs;
        let refused = |r: io::Result<()>| {
            let e = r.unwrap_err();
            assert!(is_symlink_refusal(&e), "{e}");
        };
        refused(fs.write_file(&link, &mut |w| w.write_all(b"x")));
        refused(fs.truncate(&link, 0));
        let round = crate::fsops::SyncRound::new();
        refused(fs.cut_in_round(&link, 7, 0, &round).map(|_| ()));
        refused(fs.append_range(&root.join("d/src"), ByteRange::new(0, 4), &link));
        refused(fs.create_sized_in_round(&link, 4, &round));
        refused(
            fs.copy_range_at_in_round(&root.join("d/src"), ByteRange::new(0, 4), &link, 0, &round)
                .map(|_| ()),
        );
        refused(fs.remove_file(&link));
        refused(
            fs.copy_range(&root.join("d/src"), ByteRange::new(0, 4), &link)
                .map(|_| ()),
        );
        refused(fs.write_file(&root.join("d/dir-link/new"), &mut |_| Ok(())));
        refused(fs.create_dir_all(&root.join("d/dir-link/sub")));
        refused(fs.rename(&root.join("d/src"), &link));
        refused(fs.rename(&link, &root.join("d/other")));
        refused(fs.exchange(&root.join("d/src"), &link));
        refused(fs.exchange(&link, &root.join("d/src")));
        refused(fs.hard_link(&link, &root.join("d/other")));
        refused(fs.remove_dir(&root.join("d/dir-link")));
        assert_eq!(fs::read(outside.join("target")).unwrap(), b"keep me");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    });
}

#[test]
fn a_stale_regular_temp_is_replaced_and_a_hard_linked_file_is_changed_under_its_own_name_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::write(root.join("tmp"), b"stale").unwrap();
    StdFs
        .write_file(&root.join("tmp"), &mut |w| w.write_all(b"new"))
        .unwrap();
    assert_eq!(fs::read(root.join("tmp")).unwrap(), b"new");
    fs::hard_link(root.join("tmp"), root.join("other-name")).unwrap();
    StdFs.truncate(&root.join("tmp"), 1).unwrap();
    assert_eq!(fs::read(root.join("tmp")).unwrap(), b"n");
    assert_eq!(fs::read(root.join("other-name")).unwrap(), b"new");
    fs::hard_link(root.join("tmp"), root.join("third-name")).unwrap();
    fs::write(root.join("more"), b"xewx").unwrap();
    StdFs
        .append_range(&root.join("more"), ByteRange::new(1, 3), &root.join("tmp"))
        .unwrap();
    assert_eq!(fs::read(root.join("tmp")).unwrap(), b"new");
    assert_eq!(fs::read(root.join("third-name")).unwrap(), b"n");
    // Only the changed name and its old siblings: no temporary copy left.
    let mut names: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["more", "other-name", "third-name", "tmp"]);
}

#[test]
fn a_cut_happens_only_at_the_length_it_expects_and_spares_other_names() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("log");
    fs::write(&file, b"0123456789").unwrap();
    let round = crate::fsops::SyncRound::new();
    // Another length, or no file: reported, nothing changed.
    assert_eq!(StdFs.cut_in_round(&file, 12, 4, &round).unwrap(), Some(10));
    assert_eq!(fs::read(&file).unwrap(), b"0123456789");
    let gone = tmp.path().join("gone");
    assert_eq!(StdFs.cut_in_round(&gone, 12, 4, &round).unwrap(), None);
    assert!(round.is_empty());
    // The expected length: cut, its fsync left to the round.
    assert_eq!(StdFs.cut_in_round(&file, 10, 4, &round).unwrap(), Some(10));
    assert_eq!(fs::read(&file).unwrap(), b"0123");
    assert_eq!(round.len(), 1);
    // Cut already (a rerun): reported as found.
    assert_eq!(StdFs.cut_in_round(&file, 10, 4, &round).unwrap(), Some(4));
    // A second name keeps the bytes it had.
    let other = tmp.path().join("other-name");
    fs::hard_link(&file, &other).unwrap();
    assert_eq!(StdFs.cut_in_round(&file, 4, 1, &round).unwrap(), Some(4));
    assert_eq!(fs::read(&file).unwrap(), b"0");
    assert_eq!(fs::read(&other).unwrap(), b"0123");
    // A folder is not opened to be cut.
    let e = StdFs.cut_in_round(tmp.path(), 0, 0, &round).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::IsADirectory, "{e}");
}

#[test]
fn new_files_and_folders_take_their_folders_mode_and_replacements_their_predecessors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::set_permissions(root, fs::Permissions::from_mode(0o750)).unwrap();
    StdFs.create_dir_all(&root.join("a/b")).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&root.join("a")), 0o750);
    assert_eq!(mode(&root.join("a/b")), 0o750);
    StdFs
        .write_file(&root.join("a/new"), &mut |w| w.write_all(b"x"))
        .unwrap();
    assert_eq!(mode(&root.join("a/new")), 0o640);
    fs::write(root.join("a/old"), b"old").unwrap();
    fs::set_permissions(root.join("a/old"), fs::Permissions::from_mode(0o604)).unwrap();
    StdFs
        .rename(&root.join("a/new"), &root.join("a/old"))
        .unwrap();
    assert_eq!(mode(&root.join("a/old")), 0o604);
    assert_eq!(fs::read(root.join("a/old")).unwrap(), b"x");
}

#[test]
fn an_exchange_swaps_two_names_at_once_and_the_incoming_file_takes_the_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let (new, old) = (tmp.path().join("new"), tmp.path().join("old"));
    fs::write(&new, b"rebuilt").unwrap();
    fs::write(&old, b"old").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o604)).unwrap();
    // A writer's handle on the old file follows it to its new name.
    let mut writer = fs::OpenOptions::new().append(true).open(&old).unwrap();
    StdFs.exchange(&new, &old).unwrap();
    io::Write::write_all(&mut writer, b"+more").unwrap();
    assert_eq!(fs::read(&old).unwrap(), b"rebuilt");
    assert_eq!(fs::read(&new).unwrap(), b"old+more");
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&old), 0o604);
    // Both names must be there, and regular files.
    let gone = tmp.path().join("gone");
    let e = StdFs.exchange(&new, &gone).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let e = StdFs.exchange(&new, tmp.path()).unwrap_err();
    assert!(e.to_string().contains("refus"), "{e}");
    assert_eq!(fs::read(&new).unwrap(), b"old+more");
}

#[test]
fn zero_ranges_are_found_through_holes_and_data() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    let file = File::create(&path).unwrap();
    file.set_len(8 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0u8; 4096], 1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"x", 5 << 20).unwrap();
    let zero = |a, b| is_zero_range(&path, ByteRange::new(a, b)).unwrap();
    assert_eq!(zero(0, 5 << 20), Some(true), "holes and written zeros");
    assert_eq!(zero(0, 8 << 20), Some(false));
    assert_eq!(zero((5 << 20) + 1, 8 << 20), Some(true));
    assert_eq!(zero(0, 9 << 20), None, "past the end");
    assert_eq!(
        is_zero_range(&tmp.path().join("none"), ByteRange::new(0, 1)).unwrap(),
        None
    );

    // A copy keeps the bytes, and the holes.
    let copy = tmp.path().join("copy");
    let digest = StdFs
        .copy_range(&path, ByteRange::new(1000, 8 << 20), &copy)
        .unwrap();
    assert_eq!(
        file_digest(&StdFs, &copy).unwrap(),
        Some(((8 << 20) - 1000, digest))
    );
    assert_eq!(
        range_digest(&StdFs, &path, ByteRange::new(1000, 8 << 20)).unwrap(),
        Some(digest)
    );
    use std::os::unix::fs::MetadataExt;
    assert!(fs::metadata(&copy).unwrap().blocks() * 512 < 1 << 20);
    assert!(StdFs
        .copy_range(&path, ByteRange::new(0, 9 << 20), &copy)
        .is_err());
}

#[test]
fn a_small_range_across_a_hole_is_copied_as_the_zeros_it_reads_as() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let file = fs::File::create(&src).unwrap();
    // Data, a hole of two blocks, data: the range crosses both edges of the hole.
    std::os::unix::fs::FileExt::write_all_at(&file, b"head", 4092).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"tail", 3 * 4096).unwrap();
    let range = ByteRange::new(4092, 3 * 4096 + 4);
    let mut expected = b"head".to_vec();
    expected.resize(3 * 4096 - 4092, 0);
    expected.extend_from_slice(b"tail");
    let packed = tmp.path().join("packed");
    let round = crate::fsops::SyncRound::new();
    StdFs
        .create_sized_in_round(&packed, 1 + range.len(), &round)
        .unwrap();
    let digest = StdFs
        .copy_range_at_in_round(&src, range, &packed, 1, &round)
        .unwrap();
    assert_eq!(digest, xxhash_rust::xxh3::xxh3_64(&expected));
    assert_eq!(fs::read(&packed).unwrap().get(1..), Some(&expected[..]));
    let copy = tmp.path().join("copy");
    assert_eq!(StdFs.copy_range(&src, range, &copy).unwrap(), digest);
    assert_eq!(fs::read(&copy).unwrap(), expected);
    // A source that ends inside a small range.
    let past = ByteRange::new(3 * 4096, 3 * 4096 + 5);
    let e = StdFs
        .copy_range_at_in_round(&src, past, &packed, 0, &round)
        .unwrap_err();
    assert!(e.to_string().contains("before the end of range"), "{e}");
}

#[test]
fn slices_copied_into_a_sized_file_land_at_their_offsets_holes_and_all() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let file = fs::File::create(&src).unwrap();
    // Data, then a 2 MiB hole, then data.
    std::os::unix::fs::FileExt::write_all_at(&file, b"0123456789", 0).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"tail", 2 << 20).unwrap();
    let packed = tmp.path().join("packed");
    fs::write(&packed, b"stale").unwrap();
    let round = crate::fsops::SyncRound::new();
    let whole = ByteRange::new(0, (2 << 20) + 4);
    let total = 4 + whole.len();
    StdFs.create_sized_in_round(&packed, total, &round).unwrap();
    // In either order: each slice has its own offset.
    let second = StdFs
        .copy_range_at_in_round(&src, whole, &packed, 4, &round)
        .unwrap();
    let first = StdFs
        .copy_range_at_in_round(&src, ByteRange::new(2, 6), &packed, 0, &round)
        .unwrap();
    assert_eq!(first, xxhash_rust::xxh3::xxh3_64(b"2345"));
    assert_eq!(range_digest(&StdFs, &src, whole).unwrap(), Some(second));
    let bytes = fs::read(&packed).unwrap();
    assert_eq!(bytes.len() as u64, total);
    assert_eq!(bytes.get(..14), Some(&b"23450123456789"[..]));
    assert_eq!(bytes.get(bytes.len() - 4..), Some(&b"tail"[..]));
    assert!(
        fs::metadata(&packed).unwrap().blocks() * 512 < 1 << 20,
        "hole kept"
    );
    // One file in the round, however many slices.
    assert_eq!(round.len(), 1);

    // A slice that would grow the file, or start past it, is refused.
    let e = StdFs
        .copy_range_at_in_round(&src, ByteRange::new(0, 10), &packed, total - 4, &round)
        .unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    assert!(StdFs
        .copy_range_at_in_round(&src, ByteRange::new(0, 1), &packed, u64::MAX, &round)
        .is_err());
    // A source shorter than the range.
    assert!(StdFs
        .copy_range_at_in_round(&src, ByteRange::new(0, 3 << 20), &packed, 0, &round)
        .is_err());
    assert_eq!(
        fs::read(&packed).unwrap(),
        bytes,
        "nothing written by a refusal"
    );

    // Appending a slice of it.
    let dst = tmp.path().join("dst");
    fs::write(&dst, b">").unwrap();
    StdFs
        .append_range(&packed, ByteRange::new(1, 3), &dst)
        .unwrap();
    assert_eq!(fs::read(&dst).unwrap(), b">34");
    assert!(StdFs
        .append_range(&packed, ByteRange::new(total - 1, total + 1), &dst)
        .is_err());
    assert_eq!(fs::read(&dst).unwrap(), b">34", "nothing appended");
}

/// A file whose access time is a day older than its modification time: the state
/// in which `relatime` updates the access time on the next read.
fn stale_atime(path: &Path) -> io::Result<i64> {
    fs::write(path, b"written by the server")?;
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    File::options()
        .write(true)
        .open(path)?
        .set_times(fs::FileTimes::new().set_accessed(day_ago))?;
    Ok(fs::metadata(path)?.atime())
}

#[test]
fn reading_leaves_the_access_time_as_it_was() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("00000000000000000000.log");
    let before = stale_atime(&path)?;
    let mut text = String::new();
    open_read(&path)?.read_to_string(&mut text)?;
    assert_eq!(text, "written by the server");
    // Under `relatime` a plain open's read would have set it (the fixture-wide
    // check of this is `cli::check_leaves_every_file_s_access_time_as_it_was`).
    assert_eq!(fs::metadata(&path)?.atime(), before);
    Ok(())
}
