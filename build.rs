//! Rebuilds when the schema or the translations change (they are compiled
//! into the binary with include_str!) and stamps the build with its commit.

fn main() {
    println!("cargo:rerun-if-changed=schema.sql");
    println!("cargo:rerun-if-changed=assets/i18n");
    println!("cargo:rerun-if-changed=.git/HEAD");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CLINICDESK_COMMIT={commit}");
}
