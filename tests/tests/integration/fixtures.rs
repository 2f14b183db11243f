//! The real iggy-server 0.6.0 fixtures: counts `check` must report, and the proof that
//! the index builder writes exactly the bytes the server wrote.

use crate::warden;
use harness::fixture;
use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use recovery::guided::analyze_without_history;
use recovery::layout::discover;
use recovery::rebuild::rebuild_index;
use recovery::report::CheckReport;

#[test]
fn clean_fixture_counts_and_what_blocks_a_start() {
    let dir = fixture(CLEAN);
    let run = warden(["check", "--json", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["partitions"], 3);
    assert_eq!(r["segments"], 6);
    assert_eq!(r["messages"], 4386);
    assert_eq!(r["ready_to_start"], false);
    let per: Vec<u64> = r["partition_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["messages"].as_u64().unwrap())
        .collect();
    assert_eq!(per, vec![2886, 1200, 300]);
    let problems = r["problems"].as_array().unwrap();
    let of_kind = |k: &str| -> Vec<String> {
        problems
            .iter()
            .filter(|p| p["kind"] == k)
            .map(|p| p["path"].as_str().unwrap().to_string())
            .collect()
    };
    let pairs = of_kind("empty-pair");
    assert_eq!(pairs.len(), 2);
    assert!(pairs[0].ends_with("partitions/0/00000000000000002886.log"));
    assert!(pairs[1].ends_with("partitions/1/00000000000000001200.log"));
    // The stored fixtures lost their empty folders; the real server needs them (it
    // refuses to start without offsets/consumers and offsets/groups).
    assert_eq!(of_kind("missing-offsets-dir").len(), 7);
    assert_eq!(problems.len(), 9);
}

#[test]
fn killed_under_load_fixture_has_every_message_valid() {
    let dir = fixture(KILLED_UNDER_LOAD);
    let analysis = analyze_without_history(&discover(&dir).unwrap(), &|_| {}).unwrap();
    let report = CheckReport::new(&analysis);
    assert_eq!(
        (report.partitions, report.segments, report.messages),
        (3, 17, 48_650)
    );
    // Every log and index is intact: besides the offsets folders the stored fixture
    // lost, the only finding is partition 2's empty pair.
    let data: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind.name() != "missing-offsets-dir")
        .collect();
    assert_eq!(data.len(), 1, "{:?}", report.problems);
    assert_eq!(data[0].kind.name(), "empty-pair");
    assert!(data[0]
        .path
        .ends_with("streams/0/topics/0/partitions/2/00000000000000012270.log"));
    assert_eq!(report.problems.len(), 1 + 9);
    assert_eq!(report.version.as_deref(), Some("0.6.0"));
}

#[test]
fn rebuilding_every_fixture_index_gives_the_servers_bytes() {
    let mut rebuilt = 0;
    for name in [CLEAN, KILLED_UNDER_LOAD] {
        let layout = discover(&fixture(name)).unwrap();
        for seg in layout.partitions.iter().flat_map(|p| &p.segments) {
            let mut bytes = Vec::new();
            let digest = rebuild_index(
                std::fs::File::open(&seg.log_path).unwrap(),
                &seg.log_path,
                seg.key.start_offset,
                seg.log_len.unwrap(),
                &mut bytes,
            )
            .unwrap();
            let original = std::fs::read(&seg.index_path).unwrap();
            assert_eq!(bytes, original, "{}", seg.index_path.display());
            assert_eq!(digest.len, original.len() as u64);
            rebuilt += 1;
        }
    }
    assert_eq!(rebuilt, 6 + 17);
}

/// A clone must stand on its own: no code, script or CI step may read the `shared/`
/// folder that sits beside this project's own checkouts. Documentation may mention it.
#[test]
fn no_code_reads_the_shared_folder_beside_the_clone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Spelled in two halves so that this file does not match itself.
    let needles = [concat!("../", "shared"), concat!("shared/", "fixtures")];
    let mut offenders = Vec::new();
    let mut checked = 0;
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                let skipped = ["target", ".git", "fixtures", "corpus", "artifacts"];
                if !skipped.contains(&name.as_str()) && !name.starts_with("target-") {
                    stack.push(path);
                }
                continue;
            }
            let code = [".rs", ".sh", ".py", ".toml", ".service", ".conf"]
                .iter()
                .any(|ext| name.ends_with(ext))
                || path
                    .parent()
                    .and_then(std::path::Path::file_name)
                    .is_some_and(|folder| folder == ".ci");
            if !code {
                continue;
            }
            checked += 1;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if needles.iter().any(|n| text.contains(n)) {
                offenders.push(path);
            }
        }
    }
    assert!(
        checked > 50,
        "walked only {checked} code files from {root:?}"
    );
    assert!(
        offenders.is_empty(),
        "these read the shared folder: {offenders:?}"
    );
}

/// The code files of the three product crates, without their `#[cfg(test)]` modules
/// (tests may build names and open journals directly).
fn product_code() -> Vec<(std::path::PathBuf, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut stack: Vec<_> = ["journal/src", "recovery/src", "daemon/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_none_or(|n| n != "tests.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]") {
                    Some(at) => text[..at].to_string(),
                    None => text,
                };
                out.push((path, code));
            }
        }
    }
    out
}

#[test]
fn segment_file_names_and_the_journal_opener_each_have_one_home() {
    let code = product_code();
    assert!(code.len() > 50, "walked only {} files", code.len());
    // Spelled in halves so that this file does not match itself.
    let name_rules = [
        concat!(":0", "20"),
        concat!("strip_suffix(\".", "log\")"),
        concat!("strip_suffix(\".", "index\")"),
        concat!("{}.", "log\""),
        concat!("{}.", "index\""),
    ];
    let opener = concat!("Journal::", "open(");
    let mut offenders = Vec::new();
    for (path, text) in &code {
        let name = path.file_name().unwrap().to_string_lossy();
        if name != "segment_name.rs" && name_rules.iter().any(|n| text.contains(n)) {
            offenders.push(format!(
                "{} builds or parses a segment file name",
                path.display()
            ));
        }
        let journal_crate = path.components().any(|c| c.as_os_str() == "journal");
        if !journal_crate && name != "journal_open.rs" && text.contains(opener) {
            offenders.push(format!("{} opens the journal itself", path.display()));
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Modules of `crate_dir` (`a/b.rs` and `a/b/mod.rs` are `a::b`) and, for each, the
/// modules of the same crate its code names (`crate::`, `super::`, `self::` and
/// relative paths to its children; comments and `#[cfg(test)]` modules left out; a
/// path names the longest module it starts with).
fn module_graph(
    crate_dir: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir);
    let module_of = |path: &std::path::Path| {
        let rel = path.strip_prefix(&root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        parts
    };
    let files: Vec<_> = product_code()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&root))
        .collect();
    let names: std::collections::BTreeSet<String> =
        files.iter().map(|(p, _)| module_of(p).join("::")).collect();
    let mut graph = std::collections::BTreeMap::new();
    for (path, text) in &files {
        let me = module_of(path);
        let up = me[..me.len().saturating_sub(1)].to_vec();
        // Paths that name a module: from the crate root, the parent, this module,
        // or (a relative path) one of its children.
        let mut starts: Vec<(String, Vec<String>)> = vec![
            ("crate::".into(), Vec::new()),
            ("super::".into(), up),
            ("self::".into(), me.clone()),
        ];
        let prefix = if me.is_empty() {
            String::new()
        } else {
            format!("{}::", me.join("::"))
        };
        for name in &names {
            if let Some(child) = name.strip_prefix(&prefix).filter(|c| !c.contains("::")) {
                if !child.is_empty() && name != &me.join("::") {
                    let mut base = me.clone();
                    base.push(child.to_string());
                    starts.push((format!("{child}::"), base));
                }
            }
        }
        let mut uses = std::collections::BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (start, base) in &starts {
                for (at, _) in code.match_indices(start.as_str()) {
                    let before = code[..at].chars().last();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    let rest = &code[at + start.len()..];
                    let segs = rest
                        .split("::")
                        .map(|s| {
                            s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                                .next()
                                .unwrap_or("")
                        })
                        .take_while(|s| !s.is_empty());
                    let mut full = base.clone();
                    full.extend(segs.map(str::to_string));
                    let target = (1..=full.len())
                        .rev()
                        .map(|n| full[..n].join("::"))
                        .find(|m| names.contains(m));
                    if let Some(t) = target {
                        if t != me.join("::") {
                            uses.insert(t);
                        }
                    }
                }
            }
        }
        graph.insert(me.join("::"), uses);
    }
    graph
}

/// The modules that lie on a cycle of `graph`.
fn modules_on_cycles(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> std::collections::BTreeSet<String> {
    let reaches = |from: &String| {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo: Vec<&String> = graph[from].iter().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(graph.get(m).into_iter().flatten());
            }
        }
        seen
    };
    graph
        .keys()
        .filter(|m| reaches(m).contains(*m))
        .cloned()
        .collect()
}

#[test]
fn no_module_depends_on_one_that_depends_on_it() {
    // A check that it sees cycles: the journal's modules before `trees.rs`.
    let mut sample = module_graph("journal/src");
    assert!(sample.len() > 10, "{sample:?}");
    sample
        .entry("trees".into())
        .or_default()
        .insert("store".into());
    assert!(modules_on_cycles(&sample).contains("store"));

    for crate_dir in ["journal/src", "recovery/src", "daemon/src"] {
        assert_eq!(
            modules_on_cycles(&module_graph(crate_dir)),
            Default::default(),
            "{crate_dir}"
        );
    }
}
