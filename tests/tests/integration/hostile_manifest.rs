//! A manifest is data on disk in a folder another user may own: `restore` must never
//! write outside the data directory, whatever a crafted manifest says.

use harness::fixtures::CLEAN;
use harness::{apply, fixture_copy, snapshot, Fault};
use serde_json::Value;
use std::path::Path;

fn run(args: &[&str], data: &Path, state: &Path) -> harness::Run {
    crate::warden_on(args, data, state)
}

/// Ways to point a manifest outside: `(field edit, description)`.
fn crafted(manifest: &Value, outside: &str) -> Vec<(Value, String)> {
    let mut out = Vec::new();
    for target in [
        format!("../../../{outside}"),
        format!("/{outside}"),
        String::new(),
    ] {
        // The manifest's file alone.
        let mut m = manifest.clone();
        m["file"] = Value::String(target.clone());
        out.push((m, format!("file = {target:?}")));
        // The file and the action's own path together, so they agree.
        let mut m = manifest.clone();
        m["file"] = Value::String(target.clone());
        for kind in ["QuarantineFile", "CreateDir"] {
            if let Some(a) = m["action"].get_mut(kind) {
                a["path"] = Value::String(target.clone());
            }
        }
        out.push((m, format!("file and action path = {target:?}")));
    }
    // A range that ends before it starts.
    let mut m = manifest.clone();
    m["range"] = serde_json::json!({"start": 10, "end": 2});
    out.push((m, "range 10..2".into()));
    out
}

/// Ways a packed run manifest can misplace repair `i`'s slice of `bytes`: past the
/// end of the file, past the largest offset, over another repair's slice, missing,
/// or in a manifest of the version that has none.
fn crafted_slices(manifest: &Value, i: usize) -> Vec<(Value, String)> {
    let entry = &manifest["repairs"][i];
    assert!(entry["packed"].is_object(), "a packed run: {manifest:#}");
    let len = entry["packed"]["len"].as_u64().unwrap();
    let start = entry["range"]["start"].as_u64().unwrap();
    let mut out = Vec::new();
    let mut edit = |what: &str, change: &dyn Fn(&mut Value)| {
        let mut m = manifest.clone();
        change(&mut m);
        out.push((m, format!("{what} (repair {i})")));
    };
    edit("a slice past the end of bytes", &|m| {
        m["repairs"][i]["packed"]["offset"] = serde_json::json!(1u64 << 40);
    });
    edit("a slice past the largest offset", &|m| {
        m["repairs"][i]["packed"]["offset"] = serde_json::json!(u64::MAX - len / 2);
    });
    edit("a huge slice, its range to match", &|m| {
        m["repairs"][i]["range"]["end"] = serde_json::json!(start + (1u64 << 50));
        m["repairs"][i]["packed"]["len"] = serde_json::json!(1u64 << 50);
    });
    edit("a slice longer than its range", &|m| {
        m["repairs"][i]["packed"]["len"] = serde_json::json!(len + 1);
    });
    edit("no slice", &|m| {
        m["repairs"][i].as_object_mut().unwrap().remove("packed");
    });
    edit("a slice in a version 1 run", &|m| {
        m["version"] = serde_json::json!(1)
    });
    // Over another repair's bytes, where there are two with bytes.
    let others = manifest["repairs"].as_array().unwrap();
    let other = others
        .iter()
        .enumerate()
        .find(|(j, o)| *j != i && o["packed"]["len"].as_u64().unwrap() > 0);
    if let (Some((_, other)), true) = (other, len > 0) {
        let offset = other["packed"]["offset"].clone();
        edit("a slice over another repair's", &|m| {
            m["repairs"][i]["packed"]["offset"] = offset.clone();
        });
    }
    out
}

#[test]
fn crafted_manifests_never_make_restore_write_outside() {
    let copy = fixture_copy(CLEAN);
    let (data, state) = (copy.path(), copy.tmp_root().join("state"));
    apply(data, "streams/1/topics/0/partitions/0", Fault::TornLogTail).unwrap();
    assert_eq!(run(&["recover"], data, &state).code, 0);
    let outside_dir = copy.tmp_root().join("outside");
    std::fs::create_dir_all(&outside_dir).unwrap();
    std::fs::write(outside_dir.join("victim"), b"not yours").unwrap();
    let quarantine = state.join("quarantine");
    let mut kinds = std::collections::BTreeSet::new();
    let mut cases = 0;
    let mut slice_cases = 0;
    // The outside file, named relative to the root for the absolute case.
    let rel_outside = outside_dir.join("victim");
    let rel_outside = rel_outside.strip_prefix("/").unwrap().to_str().unwrap();
    let mut check = |path: &Path, text: Vec<u8>, id: &str, what: &str| {
        std::fs::write(path, text).unwrap();
        let data_before = snapshot(data);
        let r = run(&["restore", id], data, &state);
        assert_ne!(r.code, 0, "r{id} with {what}: {}", r.stdout);
        assert_eq!(
            std::fs::read(outside_dir.join("victim")).unwrap(),
            b"not yours"
        );
        assert_eq!(
            std::fs::read_dir(&outside_dir).unwrap().count(),
            1,
            "{what}"
        );
        assert_eq!(
            snapshot(data),
            data_before,
            "r{id} with {what}: data changed"
        );
        cases += 1;
    };
    for entry in std::fs::read_dir(&quarantine).unwrap() {
        let folder = entry.unwrap().path();
        let path = folder.join("manifest.json");
        let original = std::fs::read_to_string(&path).unwrap();
        let manifest: Value = serde_json::from_str(&original).unwrap();
        // A run folder's manifest lists its repairs; each is crafted in place.
        let entries: Vec<Value> = match manifest["repairs"].as_array() {
            Some(repairs) => repairs.clone(),
            None => vec![manifest.clone()],
        };
        for (i, entry) in entries.iter().enumerate() {
            let id = entry["repair"].as_u64().unwrap().to_string();
            kinds.insert(
                entry["action"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .next()
                    .unwrap()
                    .clone(),
            );
            for (m, what) in crafted(entry, rel_outside) {
                let text = if manifest.get("repairs").is_some() {
                    let mut run = manifest.clone();
                    run["repairs"][i] = m;
                    run
                } else {
                    m
                };
                check(&path, serde_json::to_vec_pretty(&text).unwrap(), &id, &what);
            }
            if manifest.get("repairs").is_none() {
                continue;
            }
            // What only a run manifest can get wrong: another run's name, a repair
            // outside the run's span or listed twice, whole files (a re-lay's).
            let mut renamed = manifest.clone();
            renamed["run"] = Value::String("run-r00000001-r99999999".into());
            let mut outside_span = manifest.clone();
            outside_span["repairs"][i]["repair"] = serde_json::json!(99_999_999);
            let mut twice = manifest.clone();
            twice["repairs"].as_array_mut().unwrap().push(entry.clone());
            let mut whole = manifest.clone();
            whole["repairs"][i]["files"] = serde_json::json!([{
                "file": format!("../../../{rel_outside}"),
                "len": 9,
                "xxh3": 0,
                "saved_as": "../../../victim",
            }]);
            for (m, what) in [
                (renamed, "another run's name"),
                (outside_span, "a repair outside the run"),
                (twice, "a repair listed twice"),
                (whole, "whole files in a run"),
            ] {
                check(&path, serde_json::to_vec_pretty(&m).unwrap(), &id, what);
            }
            // What only a packed run can get wrong: its slices of `bytes`.
            for (m, what) in crafted_slices(&manifest, i) {
                let text = serde_json::to_vec_pretty(&m).unwrap();
                check(&path, text, &id, &what);
                slice_cases += 1;
            }
        }
        std::fs::write(&path, original).unwrap();
    }
    assert!(kinds.len() >= 3, "every action kind of the run: {kinds:?}");
    assert!(slice_cases >= 6, "{slice_cases}");
    assert!(cases >= 3 * 7, "{cases}");
}
