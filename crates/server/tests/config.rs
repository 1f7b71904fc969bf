//! The config file (`magpie serve --config`), its precedence (flag > env >
//! file > default), `magpie config`, and the repo's magpie.example.toml.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, RawClient};

/// The magpie binary with every `MAGPIE_*` variable of the test's own
/// environment removed, so only what a test sets is seen.
fn magpie_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_magpie"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAGPIE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = magpie_cmd();
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("run magpie")
}

/// One line of `magpie config`: the value as TOML text and its source.
#[derive(Debug, PartialEq)]
struct Line {
    value: String,
    source: String,
}

/// Runs `magpie config` and returns its settings by name, after checking
/// it exited 0 and that its output parses as TOML.
fn config(args: &[&str], env: &[(&str, &str)]) -> (BTreeMap<String, Line>, String) {
    let mut full = vec!["config"];
    full.extend_from_slice(args);
    let out = run(&full, env);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "magpie config failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("magpie config output is not TOML: {e}\n{stdout}"));
    let mut lines = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            // an unset optional setting: "# name is unset  # source"
            if let Some((name, source)) = rest.split_once(" is unset  # ") {
                let line = Line {
                    value: "unset".into(),
                    source: source.into(),
                };
                lines.insert(name.to_string(), line);
            }
            continue;
        }
        let (setting, source) = line.split_once("  # ").expect("source comment");
        let (name, value) = setting.split_once(" = ").expect("name = value");
        let line = Line {
            value: value.into(),
            source: source.into(),
        };
        lines.insert(name.to_string(), line);
    }
    (lines, stdout)
}

fn line(value: &str, source: &str) -> Line {
    Line {
        value: value.into(),
        source: source.into(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

/// Every setting's name, from the clap definition of `serve`.
fn setting_names() -> Vec<String> {
    magpie::config::file::settings_command()
        .get_arguments()
        .map(|a| a.get_long().expect("long flag").to_string())
        .collect()
}

#[test]
fn precedence_flag_env_file_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "magpie.toml",
        "port = 1111\nhz = 20\nbind = \"0.0.0.0\"\nephemeral = true\nrepair = true\n",
    );
    let f = file.to_str().unwrap();

    // one setting up the ladder: default, file, env, flag
    let (c, _) = config(&[], &[]);
    assert_eq!(c["port"], line("6379", "default"));
    let (c, _) = config(&["--config", f], &[]);
    assert_eq!(c["port"], line("1111", "file"));
    let (c, _) = config(&["--config", f], &[("MAGPIE_PORT", "2222")]);
    assert_eq!(c["port"], line("2222", "env MAGPIE_PORT"));
    let (c, _) = config(
        &["--config", f, "--port", "3333"],
        &[("MAGPIE_PORT", "2222")],
    );
    assert_eq!(c["port"], line("3333", "flag"));

    // each layer at once, on different settings
    let env = [("MAGPIE_HZ", "30"), ("MAGPIE_EPHEMERAL", "false")];
    let (c, _) = config(&["--config", f, "--port", "3333", "--databases=4"], &env);
    assert_eq!(c["port"], line("3333", "flag"));
    assert_eq!(c["databases"], line("4", "flag"));
    assert_eq!(c["hz"], line("30", "env MAGPIE_HZ"));
    // an env var saying false beats the file's true
    assert_eq!(c["ephemeral"], line("false", "env MAGPIE_EPHEMERAL"));
    assert_eq!(c["bind"], line("\"0.0.0.0\"", "file"));
    assert_eq!(c["repair"], line("true", "file"));
    assert_eq!(c["maxclients"], line("10000", "default"));
    assert_eq!(c["threads"], line("unset", "default"));
    assert_eq!(c.len(), setting_names().len(), "one line per setting");
}

#[test]
fn config_file_from_env_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.toml", "hz = 11\n");
    let b = write(dir.path(), "b.toml", "hz = 12\n");
    let env = [("MAGPIE_CONFIG", a.to_str().unwrap())];
    let (c, _) = config(&[], &env);
    assert_eq!(c["hz"], line("11", "file"));
    let (c, _) = config(&["--config", b.to_str().unwrap()], &env);
    assert_eq!(c["hz"], line("12", "file"));
}

#[test]
fn value_types_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.toml",
        "appendfsync = \"always\"\nlog-format = \"json\"\ncompact-ratio = 2\n\
         compact-min-size = \"18446744073709551615\"\nshards = 32\ndir = \"/tmp/x y\"\n\
         requirepass = \"-s3cret \\\"q\\\"\"\nephemeral = false\n",
    );
    let (c, _) = config(&["--config", file.to_str().unwrap(), "--show-secrets"], &[]);
    assert_eq!(c["appendfsync"], line("\"always\"", "file"));
    assert_eq!(c["log-format"], line("\"json\"", "file"));
    assert_eq!(c["compact-ratio"], line("2.0", "file"));
    // beyond TOML's i64: written (and printed back) as a string
    assert_eq!(
        c["compact-min-size"],
        line("\"18446744073709551615\"", "file")
    );
    assert_eq!(c["shards"], line("32", "file"));
    assert_eq!(c["dir"], line("\"/tmp/x y\"", "file"));
    // quoting is the TOML writer's choice: compare what it means
    let pass: toml::Table = format!("v = {}", c["requirepass"].value).parse().unwrap();
    assert_eq!(pass["v"].as_str(), Some("-s3cret \"q\""));
    assert_eq!(c["requirepass"].source, "file");
    assert_eq!(c["ephemeral"], line("false", "file"));
}

#[test]
fn secrets_are_hidden_unless_asked() {
    let (c, out) = config(&["--requirepass", "hunter2"], &[]);
    assert!(!out.contains("hunter2"), "{out}");
    assert_eq!(
        c["requirepass"],
        line("\"********\"", "flag, hidden (--show-secrets prints it)")
    );
    let (c, _) = config(&["--show-secrets"], &[("MAGPIE_REQUIREPASS", "hunter2")]);
    assert_eq!(
        c["requirepass"],
        line("\"hunter2\"", "env MAGPIE_REQUIREPASS")
    );
}

fn expect_error(file_text: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "magpie.toml", file_text);
    let f = file.to_str().unwrap();
    for sub in ["serve", "config"] {
        let out = run(&[sub, "--config", f, "--port", "0", "--ephemeral"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{sub} with {file_text:?}: {stderr}"
        );
        assert_eq!(
            stderr,
            format!("magpie: {f}: {message}\n"),
            "{sub} with {file_text:?}"
        );
        assert!(out.stdout.is_empty(), "nothing printed on error");
    }
}

#[test]
fn unknown_setting_is_an_error() {
    expect_error("prot = 6380\n", "unknown setting 'prot'");
    // flags that are not settings are not keys either
    expect_error("config = \"x.toml\"\n", "unknown setting 'config'");
    expect_error("help = true\n", "unknown setting 'help'");
    expect_error("[server]\nport = 1\n", "unknown setting 'server'");
}

#[test]
fn bad_values_are_errors() {
    expect_error(
        "port = 70000\n",
        "bad value for 'port': 70000 is not in 0..=65535",
    );
    expect_error(
        "port = \"abc\"\n",
        "bad value for 'port': 'abc': invalid digit found in string",
    );
    expect_error(
        "port = 1.5\n",
        "bad value for 'port': expected an integer, found float",
    );
    expect_error(
        "ephemeral = \"yes\"\n",
        "bad value for 'ephemeral': expected true or false, found string",
    );
    expect_error(
        "bind = 1\n",
        "bad value for 'bind': expected a string, found integer",
    );
    expect_error(
        "appendfsync = \"sometimes\"\n",
        "bad value for 'appendfsync': invalid fsync policy 'sometimes' (expected always, everysec or no)",
    );
    expect_error(
        "log-format = \"xml\"\n",
        "bad value for 'log-format': 'xml' is not one of: logfmt, json",
    );
    // expect_error passes --port and --ephemeral: overriding a bad value
    // does not excuse it
    expect_error(
        "hz = 10\nephemeral = 3\n",
        "bad value for 'ephemeral': expected true or false, found integer",
    );
}

#[test]
fn magpie_config_reports_a_failed_check_after_printing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "hz.toml", "hz = 0\n");
    let out = run(&["config", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\nhz = 0  # file\n"), "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "magpie: --hz must be between 1 and 500\n"
    );
    let out = run(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreadable_or_malformed_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = run(
        &[
            "serve",
            "--config",
            missing.to_str().unwrap(),
            "--ephemeral",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("magpie: {}: ", missing.display())),
        "{stderr}"
    );

    let bad = write(dir.path(), "bad.toml", "port = \n");
    let out = run(&["config", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "magpie: {}: TOML parse error at line 1",
            bad.display()
        )),
        "{stderr}"
    );
}

/// A `magpie serve` we start ourselves (the harness always passes
/// `--port`, and these tests need the port to come from elsewhere).
struct Served {
    child: Child,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- server stderr ---\n{log}--- end ---");
        }
    }
}

/// Starts `magpie serve` with `args` and `env`, waiting (at most 20 s) for
/// its "magpie ready" line.
fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
    let log = dir.join(format!("serve-{}.log", free_port()));
    let mut cmd = magpie_cmd();
    let child = cmd
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start magpie");
    let mut served = Served { child, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&served.log).unwrap_or_default();
        if text.contains("magpie ready") {
            return served;
        }
        if let Ok(Some(status)) = served.child.try_wait() {
            panic!("magpie exited early ({status}):\n{text}");
        }
        assert!(Instant::now() < deadline, "magpie not ready:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts the server's `CONFIG GET name` reply is exactly `value`.
fn assert_config(c: &mut RawClient, name: &str, value: &str) {
    let want = format!(
        "*2\r\n${}\r\n{name}\r\n${}\r\n{value}\r\n",
        name.len(),
        value.len()
    );
    assert_eq!(c.cmd_str(&["CONFIG", "GET", name]), want);
}

#[test]
fn precedence_on_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let (p_file, p_env, p_flag) = (free_port(), free_port(), free_port());
    let file = write(
        dir.path(),
        "magpie.toml",
        &format!(
            "port = {p_file}\nmemcache-port = 0\nhttp-port = 0\nephemeral = true\n\
             databases = 4\nhz = 20\n"
        ),
    );
    let f = file.to_str().unwrap();

    // the file alone: its port, its databases
    let s = serve(dir.path(), &["--config", f], &[]);
    let mut c = RawClient::connect(p_file);
    assert_config(&mut c, "port", &p_file.to_string());
    assert_config(&mut c, "databases", "4");
    assert_eq!(
        c.cmd(&["SELECT", "4"]),
        b"-ERR DB index is out of range\r\n"
    );
    drop(s);

    // the environment beats the file; the file's other settings still hold
    let env = [("MAGPIE_PORT", &*p_env.to_string()), ("MAGPIE_HZ", "30")];
    let s = serve(dir.path(), &["--config", f], &env);
    let mut c = RawClient::connect(p_env);
    assert_config(&mut c, "port", &p_env.to_string());
    assert_config(&mut c, "hz", "30");
    assert_config(&mut c, "databases", "4");
    drop(s);

    // a flag beats both
    let p = p_flag.to_string();
    let s = serve(dir.path(), &["--config", f, "--port", &p, "--hz=40"], &env);
    let mut c = RawClient::connect(p_flag);
    assert_config(&mut c, "port", &p);
    assert_config(&mut c, "hz", "40");
    assert_config(&mut c, "databases", "4");
    drop(s);
}

#[test]
fn magpie_config_output_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write(
        dir.path(),
        "in.toml",
        "memcache-port = 0\nappendfsync = \"always\"\ncompact-ratio = 0.5\nthreads = 2\n",
    );
    let p = port.to_string();
    let env = [("MAGPIE_HTTP_PORT", "0"), ("MAGPIE_REQUIREPASS", "pw")];
    let args = [
        "--config",
        file.to_str().unwrap(),
        "--port",
        &p,
        "--ephemeral",
        "--show-secrets",
    ];
    let (first, text) = config(&args, &env);
    let out = write(dir.path(), "out.toml", &text);
    let o = out.to_str().unwrap();

    // read back alone: the same values, all from the file (or unset)
    let (second, _) = config(&["--config", o, "--show-secrets"], &[]);
    assert_eq!(first.len(), second.len());
    for (name, l) in &first {
        assert_eq!(second[name].value, l.value, "{name}");
        let want = if l.value == "unset" {
            "default"
        } else {
            "file"
        };
        assert_eq!(second[name].source, want, "{name}");
    }

    // and the server accepts it and runs with it
    let _s = serve(dir.path(), &["--config", o], &[]);
    let mut c = RawClient::connect(port);
    assert_eq!(c.cmd(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "pw"]), b"+OK\r\n");
    assert_config(&mut c, "port", &p);
}

#[test]
fn example_file_lists_every_setting_with_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../magpie.example.toml");
    let text = std::fs::read_to_string(&path).expect("magpie.example.toml at the repo root");
    let table: toml::Table = text.parse().expect("example parses as TOML");
    let cmd = magpie::config::file::settings_command();
    let names = setting_names();

    for key in table.keys() {
        assert!(names.contains(key), "example has unknown setting '{key}'");
    }
    for arg in cmd.get_arguments() {
        let name = arg.get_long().unwrap();
        if table.contains_key(name) {
            continue;
        }
        // only a setting without a default may be left out, and then as a
        // commented-out line showing its syntax
        assert!(
            arg.get_default_values().is_empty()
                && !matches!(arg.get_action(), clap::ArgAction::SetTrue),
            "example lacks '{name}', which has a default"
        );
        assert!(
            text.lines().any(|l| l.starts_with(&format!("# {name} = "))),
            "example has no entry (not even commented out) for '{name}'"
        );
    }
    // every entry has a one-line comment above it
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let is_entry = names
            .iter()
            .any(|n| l.starts_with(&format!("{n} = ")) || l.starts_with(&format!("# {n} = ")));
        if is_entry && !l.starts_with('#') {
            assert!(
                i > 0 && lines[i - 1].starts_with("# "),
                "no comment above: {l}"
            );
        }
    }

    // the values are the defaults: magpie config agrees line by line
    let p = path.to_str().unwrap();
    let (defaults, _) = config(&[], &[]);
    let (example, _) = config(&["--config", p], &[]);
    assert_eq!(defaults.len(), names.len());
    for (name, d) in &defaults {
        assert_eq!(
            example[name].value, d.value,
            "example's '{name}' is not the default"
        );
        let want = if d.value == "unset" {
            "default"
        } else {
            "file"
        };
        assert_eq!(example[name].source, want, "{name}");
    }
}
