//! README's Architecture table is a promise about the code: each module says
//! what it may use. This test reads the table and the `crate::` paths of every
//! module's non-test code, and fails on a dependency the table does not allow
//! and on an import cycle between modules — so the table stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A module of the crate: a top-level directory (`app/`) or file (`i18n.rs`).
type Module = String;

/// What the table allows: module → the modules it may use (`None`: all).
type Rules = BTreeMap<Module, Option<BTreeSet<Module>>>;

/// The rows of README's "## Architecture" table: `| `module` | owns | may use |`.
fn table(readme: &str) -> Result<Rules, String> {
    let section = readme.split("\n## Architecture").nth(1).ok_or("README.md has no \"## Architecture\" section")?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 3 || cells[0] == "Module" || cells[0].starts_with("---") {
            continue;
        }
        let name = backticked(cells[0]).into_iter().next().ok_or_else(|| format!("row without a `module`: {line}"))?;
        rows.push((module_name(&name), cells[2].to_owned()));
    }
    if rows.is_empty() {
        return Err("README.md's Architecture table has no rows".into());
    }
    let known: BTreeSet<Module> = rows.iter().map(|(m, _)| m.clone()).collect();
    let mut rules = Rules::new();
    for (module, may_use) in rows {
        let allowed = if may_use.starts_with("everything") {
            None
        } else {
            // `store::card` allows `store`; crates (rusqlite, tokio) are not modules.
            let used = backticked(&may_use).into_iter().map(|m| module_name(&m));
            Some(used.filter(|m| known.contains(m)).collect())
        };
        if rules.insert(module.clone(), allowed).is_some() {
            return Err(format!("module `{module}` has two rows in the Architecture table"));
        }
    }
    Ok(rules)
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// `app/` → `app`, `i18n.rs` → `i18n`, `store::card` → `store`.
fn module_name(text: &str) -> Module {
    let text = text.trim_end_matches('/');
    let text = text.strip_suffix(".rs").unwrap_or(text);
    text.split("::").next().unwrap_or(text).split('/').next().unwrap_or(text).to_owned()
}

/// Every module's source files (test-only files left out), by module.
fn modules() -> BTreeMap<Module, Vec<PathBuf>> {
    let src = Path::new(ROOT).join("src");
    let mut out = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(&src).expect("src/ is readable").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let name = module_name(&entry.file_name().to_string_lossy());
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            out.insert(name, files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            out.insert(name, vec![path]);
        }
    }
    out
}

/// The `.rs` files under `dir`, except those only compiled for tests
/// (declared `#[cfg(test)] mod x;` by their parent, or named `tests`).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let test_only = test_only_children(dir);
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("module dir is readable").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if stem == "tests" || test_only.contains(&stem) {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Names of the submodules that `dir`'s `mod.rs` declares under `#[cfg(test)]`.
fn test_only_children(dir: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("mod.rs")) else { return BTreeSet::new() };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = BTreeSet::new();
    for pair in lines.windows(2) {
        if pair[0] == "#[cfg(test)]"
            && let Some(rest) = pair[1].strip_prefix("mod ").or_else(|| pair[1].strip_prefix("pub mod "))
            && let Some(name) = rest.strip_suffix(';')
        {
            out.insert(name.trim().to_owned());
        }
    }
    out
}

/// The code of a file without comments and without its `#[cfg(test)]` items.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim();
        let opens = code.matches('{').count() as i32;
        let closes = code.matches('}').count() as i32;
        if let Some(start) = skip_depth {
            depth += opens - closes;
            if depth <= start {
                skip_depth = None;
            }
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && !trimmed.is_empty() && !trimmed.starts_with("#[") {
            pending_cfg_test = false;
            // The item under #[cfg(test)]: a `mod tests { … }` block, a `use`, a fn.
            if opens > closes {
                skip_depth = Some(depth);
                depth += opens - closes;
            }
            continue;
        }
        depth += opens - closes;
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level modules a piece of code names through `crate::`,
/// including the groups of `use crate::{a::X, b};`.
fn crate_uses(code: &str) -> BTreeSet<Module> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        // `clinicdesk::crate::` does not exist; skip `$crate::` of macros.
        if code[..at].ends_with('$') || code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(first_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 || c != '{' {
                    item.push(c);
                }
            }
            out.insert(first_ident(&item));
        } else {
            out.insert(first_ident(rest));
        }
    }
    out.remove("");
    out
}

fn first_ident(text: &str) -> String {
    text.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// What each module's non-test code uses of the others: module → used → files.
fn dependencies() -> BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    for (module, files) in modules() {
        let mut uses: BTreeMap<Module, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let mut text = std::fs::read_to_string(&file).expect("source file is readable");
            if module == "main" {
                // The binary reaches the library by its name.
                text = text.replace("clinicdesk::", "crate::");
            }
            let shown = file.strip_prefix(ROOT).unwrap_or(&file).display().to_string();
            for used in crate_uses(&non_test_code(&text)) {
                if used != module {
                    uses.entry(used).or_default().insert(shown.clone());
                }
            }
        }
        out.insert(module, uses);
    }
    out
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = path.iter().position(|m| m == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_module_uses_only_what_the_architecture_table_allows() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md is readable");
    let rules = table(&readme).unwrap_or_else(|e| panic!("{e}"));
    let deps = dependencies();
    let mut broken = Vec::new();
    for (module, uses) in &deps {
        let Some(allowed) = rules.get(module) else {
            broken.push(format!("`{module}` has no row in README's Architecture table"));
            continue;
        };
        let Some(allowed) = allowed else { continue };
        for (used, files) in uses {
            if !allowed.contains(used) {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                broken.push(format!("`{module}` uses `{used}` ({}), which its row does not allow", files.join(", ")));
            }
        }
    }
    for module in rules.keys() {
        if !deps.contains_key(module) {
            broken.push(format!("README's Architecture table has a row for `{module}`, which src/ does not have"));
        }
    }
    assert!(broken.is_empty(), "README's Architecture table is not true:\n  {}", broken.join("\n  "));
}

#[test]
fn the_modules_have_no_import_cycle() {
    let graph: BTreeMap<Module, BTreeSet<Module>> = dependencies()
        .into_iter()
        .filter(|(m, _)| m != "main")
        .map(|(m, uses)| (m, uses.into_keys().filter(|u| u != "main").collect()))
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the modules import each other in a cycle: {}", cycle.join(" → "));
    }
}

/// The checker itself: it must see what a real module would hide from it.
#[test]
fn the_checker_reads_grouped_uses_and_leaves_out_test_code() {
    let code = "use crate::{store::Replica, crm::{Person, Phone}, i18n};\n\
                // use crate::app::Commented;\n\
                fn f() { crate::media::start(); }\n\
                #[cfg(test)]\n\
                mod tests {\n    use crate::demo;\n    fn g() { crate::sync::x(); }\n}\n\
                fn after() { crate::settings::load(); }\n";
    let used = crate_uses(&non_test_code(code));
    let expected: BTreeSet<Module> =
        ["store", "crm", "i18n", "media", "settings"].into_iter().map(str::to_owned).collect();
    assert_eq!(used, expected);

    let readme = "# x\n## Architecture\n\n| Module | Owns | May use |\n|---|---|---|\n\
                  | `main.rs` | cli | everything |\n| `app/` | window | `crm`, `store::card`, egui |\n\
                  | `crm/` | words | nothing that does I/O |\n| `store/` | replica | `crm`, rusqlite |\n\n## Tests\n";
    let rules = table(readme).expect("the sample table parses");
    assert_eq!(rules["main"], None);
    assert_eq!(rules["app"], Some(["crm", "store"].into_iter().map(str::to_owned).collect()));
    assert_eq!(rules["crm"], Some(BTreeSet::new()));

    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&graph), None);
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
