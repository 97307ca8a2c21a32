use super::*;
use serde_json::{Value, json};
use std::fs;
use tempfile::TempDir;

fn script(name: &str) -> String {
    format!(
        "export const meta = {{ name: '{name}', description: 'the {name} workflow' }}\nreturn 1\n"
    )
}

/// Writes `root/rel` (creating parents) and returns the path.
fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

fn catalog_name() -> &'static str {
    booflow_catalog::scripts()[0].name
}

#[test]
fn project_shadows_global_shadows_catalog() {
    let tmp = TempDir::new().unwrap();
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    fs::create_dir_all(repo.join(".git")).unwrap();
    let cat = catalog_name();
    write(&home, &format!(".boocode/workflows/{cat}.js"), &script(cat));
    write(&home, ".boocode/workflows/shared.js", &script("shared"));
    write(
        &home,
        ".boocode/workflows/global-only.js",
        &script("global-only"),
    );
    write(&repo, ".boocode/workflows/shared.js", &script("shared"));

    let d = discover(&repo, Some(&home));
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(d.find("shared").unwrap().source, Source::Project);
    assert_eq!(d.find("global-only").unwrap().source, Source::Global);
    assert_eq!(d.find(cat).unwrap().source, Source::Global);
    assert!(d.find(cat).unwrap().path.starts_with(absolute(&home)));
    // Shadowed entries are gone and the list is sorted by name.
    assert_eq!(d.workflows.iter().filter(|w| w.name == "shared").count(), 1);
    let listed: Vec<_> = d.workflows.iter().map(|w| w.name.clone()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);

    // Without a global copy the catalog entry shows through.
    let d = discover(&repo, None);
    let entry = d.find(cat).unwrap();
    assert_eq!(entry.source, Source::Catalog);
    assert_eq!(
        entry.path,
        PathBuf::from(format!("catalog/workflows/{cat}.js"))
    );
    assert_eq!(entry.text, booflow_catalog::scripts()[0].source);
}

#[test]
fn invalid_files_are_reported_and_skipped() {
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path();
    fs::create_dir(repo.join(".git")).unwrap();
    write(repo, ".boocode/workflows/good.js", &script("good"));
    let bad = write(
        repo,
        ".boocode/workflows/bad.js",
        "export const meta = {\n  name: 'bad',\n  description: describe(),\n}\n",
    );
    let binary = repo.join(".boocode/workflows/binary.js");
    fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    write(repo, ".boocode/workflows/notes.txt", "not a script");
    write(repo, ".boocode/workflows/.draft.js", "garbage");

    let d = discover(repo, None);
    assert!(d.find("good").is_some());
    assert!(d.find("bad").is_none());
    assert_eq!(d.problems.len(), 2, "{:?}", d.problems);
    let p = d
        .problems
        .iter()
        .find(|p| p.path.ends_with("bad.js"))
        .unwrap();
    assert_eq!((p.line, p.column), (Some(3), Some(16)));
    assert!(p.message.contains("a call to 'describe'"), "{}", p.message);
    assert_eq!(
        p.to_string(),
        format!("{}:3:16: {}", absolute(&bad).display(), p.message)
    );
    let p = d
        .problems
        .iter()
        .find(|p| p.path.ends_with("binary.js"))
        .unwrap();
    assert_eq!(p.message, "not valid UTF-8");
}

#[test]
fn walks_up_to_the_git_root_and_no_further() {
    let tmp = TempDir::new().unwrap();
    let outer = tmp.path();
    let repo = outer.join("repo");
    let sub = repo.join("pkg");
    let cwd = sub.join("src/deep");
    fs::create_dir_all(&cwd).unwrap();
    fs::create_dir(repo.join(".git")).unwrap();
    write(outer, ".boocode/workflows/outside.js", &script("outside"));
    write(&repo, ".boocode/workflows/root.js", &script("root"));
    write(&repo, ".boocode/workflows/both.js", &script("both"));
    let near = write(&sub, ".boocode/workflows/both.js", &script("both"));
    write(&sub, ".boocode/workflows/pkg.js", &script("pkg"));

    let d = discover(&cwd, None);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(d.find("root").unwrap().source, Source::Project);
    assert_eq!(d.find("pkg").unwrap().source, Source::Project);
    assert!(
        d.find("outside").is_none(),
        "must not look above the git root"
    );
    // The nearer directory shadows the farther one.
    assert_eq!(d.find("both").unwrap().path, absolute(&near));

    assert_eq!(project_root_in(&absolute(&cwd), None), absolute(&sub));
    assert_eq!(project_root_in(&absolute(&repo), None), absolute(&repo));
}

#[test]
fn without_git_the_walk_stops_at_the_nearest_boocode() {
    let tmp = TempDir::new().unwrap();
    let top = tmp.path();
    let proj = top.join("proj");
    let cwd = proj.join("a/b");
    fs::create_dir_all(&cwd).unwrap();
    write(top, ".boocode/workflows/top.js", &script("top"));
    write(&proj, ".boocode/workflows/proj.js", &script("proj"));

    let d = discover(&cwd, None);
    assert!(d.find("proj").is_some());
    assert!(d.find("top").is_none());
    assert_eq!(project_root_in(&absolute(&cwd), None), absolute(&proj));
}

#[test]
fn home_boocode_is_global_not_project() {
    let tmp = TempDir::new().unwrap();
    let home = tmp.path().join("home");
    let cwd = home.join("scratch");
    fs::create_dir_all(&cwd).unwrap();
    write(&home, ".boocode/workflows/mine.js", &script("mine"));

    let d = discover(&cwd, Some(&home));
    assert_eq!(d.find("mine").unwrap().source, Source::Global);
    // Same when running from home itself.
    let d = discover(&home, Some(&home));
    assert_eq!(d.find("mine").unwrap().source, Source::Global);
    let home_abs = absolute(&home);
    assert_eq!(
        project_root_in(&absolute(&cwd), Some(&home_abs)),
        absolute(&cwd)
    );
}

#[test]
fn duplicate_names_in_one_directory_are_problems() {
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path();
    fs::create_dir(repo.join(".git")).unwrap();
    write(repo, ".boocode/workflows/a.js", &script("same"));
    write(repo, ".boocode/workflows/b.js", &script("same"));

    let d = discover(repo, None);
    assert!(d.find("same").unwrap().path.ends_with("a.js"));
    assert_eq!(d.problems.len(), 1);
    assert!(d.problems[0].path.ends_with("b.js"));
    assert!(
        d.problems[0]
            .message
            .starts_with("duplicate workflow name 'same'")
    );
}

#[test]
fn name_is_meta_name_with_a_warning_when_the_file_differs() {
    let tmp = TempDir::new().unwrap();
    let path = write(tmp.path(), "review-v2.js", &script("review"));
    let entry = load_path(&path).unwrap();
    assert_eq!(entry.name, "review");
    assert_eq!(entry.source, Source::Project);
    assert_eq!(entry.path, path);
    assert!(entry.script.warnings[0].contains("differs from the file name 'review-v2'"));
    let entry = load_path(&write(tmp.path(), "review.js", &script("review"))).unwrap();
    assert!(entry.script.warnings.is_empty());
}

#[test]
fn load_path_errors() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("missing.js");
    assert!(matches!(load_path(&missing), Err(LoadError::Read { .. })));

    let big = tmp.path().join("big.js");
    fs::write(&big, " ".repeat(MAX_SCRIPT_BYTES + 10)).unwrap();
    match load_path(&big) {
        Err(LoadError::Meta(e)) => {
            assert!(
                e.message
                    .contains(&format!("{} bytes", MAX_SCRIPT_BYTES + 10))
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("{}:1:1: script is", big.display()))
            );
        }
        other => panic!("expected the size cap, got {other:?}"),
    }

    let bad = write(tmp.path(), "bad.js", "const x = 1\n");
    let err = load_path(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.js:1:1: first statement must be"), "{err}");
}

#[test]
fn list_json_has_exactly_the_listed_fields() {
    let tmp = TempDir::new().unwrap();
    let src = "export const meta = {\n  name: 'r', description: 'd',\n  \
               phases: [{ title: 'A' }, { title: 'B', detail: 'b', model: 'm' }],\n}\n";
    let path = write(tmp.path(), "r.js", src);
    let entry = load_path(&path).unwrap();
    let v = serde_json::to_value(entry.info()).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "name",
            "description",
            "whenToUse",
            "phases",
            "source",
            "args",
            "path"
        ]
    );
    assert_eq!(v["whenToUse"], Value::Null);
    assert_eq!(v["args"], Value::Null);
    assert_eq!(v["source"], "project");
    assert_eq!(
        v["phases"],
        json!([{"title": "A"}, {"title": "B", "detail": "b", "model": "m"}])
    );
    assert_eq!(v["path"], path.to_string_lossy().as_ref());

    let catalog = discover(tmp.path(), None);
    let cat = serde_json::to_value(catalog.find(catalog_name()).unwrap().info()).unwrap();
    assert_eq!(cat["source"], "catalog");
    assert!(cat["args"].is_object());
}

#[test]
fn source_serialises_lowercase() {
    assert_eq!(serde_json::to_value(Source::Global).unwrap(), "global");
    assert_eq!(
        serde_json::from_value::<Source>(json!("catalog")).unwrap(),
        Source::Catalog
    );
    assert_eq!(Source::Project.to_string(), "project");
}
