use super::*;
use proptest::prelude::*;

/// A compact rendering of a value tree: `{k=v,...}`, `[a,b]`, strings quoted,
/// sizes as `size:N`, floats as `f:N`.
fn render(value: &Value) -> String {
    match &value.kind {
        Kind::String(s) => format!("{s:?}"),
        Kind::Integer(i) => i.to_string(),
        Kind::Size(i) => format!("size:{i}"),
        Kind::Float(f) => format!("f:{f}"),
        Kind::Bool(b) => b.to_string(),
        Kind::Array(items) => {
            let inner: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", inner.join(","))
        }
        Kind::Map(map) => render_map(map),
    }
}

fn render_map(map: &Map) -> String {
    let inner: Vec<String> = map.entries.iter().map(|e| format!("{}={}", e.key, render(&e.value))).collect();
    format!("{{{}}}", inner.join(","))
}

/// A fixed environment for deterministic tests.
fn test_env(name: &str) -> Option<String> {
    match name {
        "WARDEN_T_NUM" => Some("123".into()),
        "WARDEN_T_STR" => Some("hello".into()),
        "WARDEN_T_QUOTED" => Some("\"two words\"".into()),
        "WARDEN_T_MAP" => Some("{ a: 1, b: [x, y] }".into()),
        "WARDEN_T_BAD" => Some("two words".into()),
        "WARDEN_T_SECRET" => Some("s3cret\"".into()),
        "WARDEN_T_VAR" => Some("$WARDEN_T_NUM".into()),
        "WARDEN_T_EMPTY" => Some(String::new()),
        "WARDEN_T_SIZE" => Some("64KB".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Map, ConfigError> {
    parse_bytes_with_env(text.as_bytes(), "test.conf", &test_env)
}

#[test]
fn syntax_forms() {
    let cases: &[(&str, &str)] = &[
        // separators
        ("a = 1", "{a=1}"),
        ("a: 1", "{a=1}"),
        ("a 1", "{a=1}"),
        ("a=1", "{a=1}"),
        ("a:1", "{a=1}"),
        ("a\t=\t1", "{a=1}"),
        // terminators
        ("a = 1; b = 2", "{a=1,b=2}"),
        ("a = 1, b = 2", "{a=1,b=2}"),
        ("a = 1;\nb = 2;\n", "{a=1,b=2}"),
        ("a = 1\r\nb = 2\r\n", "{a=1,b=2}"),
        ("\n\n  a = 1\n\n\n", "{a=1}"),
        ("", "{}"),
        ("# only a comment", "{}"),
        // comments
        ("a = 1 # c\n// c\nb = 2 // c", "{a=1,b=2}"),
        ("a = x#y", "{a=\"x#y\"}"),
        ("m { # c\n a = 1 // c\n # c\n}", "{m={a=1}}"),
        ("l = [ # c\n 1 // c\n # c\n 2 ]", "{l=[1,2]}"),
        // blocks
        ("m { a = 1 }", "{m={a=1}}"),
        ("m{a=1}", "{m={a=1}}"),
        ("m = { a = 1 }", "{m={a=1}}"),
        ("m: {a: 1, b: 2}", "{m={a=1,b=2}}"),
        ("m {\n  a = 1\n  b = 2\n}", "{m={a=1,b=2}}"),
        ("m\n{\n a = 1\n}", "{m={a=1}}"),
        ("m {}", "{m={}}"),
        ("m { a = 1, }", "{m={a=1}}"),
        ("m { n { o { p = 1 } } }", "{m={n={o={p=1}}}}"),
        // outer braces and JSON
        ("{ a = 1 }", "{a=1}"),
        ("{\"listen\": \"127.0.0.1:4222\", \"max_payload\": 2048}", "{listen=\"127.0.0.1:4222\",max_payload=2048}"),
        (
            "{\n  \"a\": {\"b\": [1, 2.5, true, null_is_a_string]},\n  \"c\": \"d\"\n}\n",
            "{a={b=[1,f:2.5,true,\"null_is_a_string\"]},c=\"d\"}",
        ),
        // arrays
        ("l = [a, b]", "{l=[\"a\",\"b\"]}"),
        ("l = [a b]", "ERR"),
        ("l = [\n a\n b\n]", "{l=[\"a\",\"b\"]}"),
        ("l = [\n a,\n b,\n]", "{l=[\"a\",\"b\"]}"),
        ("l = [\n a\n , b\n]", "{l=[\"a\",\"b\"]}"),
        ("l = []", "{l=[]}"),
        ("l = [[1], [2, [3]]]", "{l=[[1],[2,[3]]]}"),
        ("l = [{a: 1}, {a: 2}]", "{l=[{a=1},{a=2}]}"),
        ("l = [{a: 1}\n{a: 2}]", "{l=[{a=1},{a=2}]}"),
        ("l[1]", "{l=[1]}"),
        // strings
        ("s = \"a b\"", "{s=\"a b\"}"),
        ("s = 'a\\tb'", "{s=\"a\\\\tb\"}"),
        ("s = \"a\\tb\"", "{s=\"a\\tb\"}"),
        ("s = \"\\x41\"", "{s=\"A\"}"),
        ("s = \"$X\"", "{s=\"$X\"}"),
        ("s = ''", "{s=\"\"}"),
        ("\"quoted key\" = 1", "{quoted key=1}"),
        ("'sq key': 1", "{sq key=1}"),
        ("s = 127.0.0.1:4222", "{s=\"127.0.0.1:4222\"}"),
        ("s = nats-route://user:pw@host:6222", "{s=\"nats-route://user:pw@host:6222\"}"),
        ("s = foo.*.bar", "{s=\"foo.*.bar\"}"),
        ("s = >", "{s=\">\"}"),
        ("s = abc==", "{s=\"abc==\"}"),
        ("s = héllo", "{s=\"héllo\"}"),
        ("s = 2020-01-01T00:00:00Z", "{s=\"2020-01-01T00:00:00Z\"}"),
        // numbers
        ("n = 42", "{n=42}"),
        ("n = -1", "{n=-1}"),
        ("n = 1.5", "{n=f:1.5}"),
        ("n = -0.5", "{n=f:-0.5}"),
        ("n = 1MB", "{n=size:1048576}"),
        ("n = 64KB", "{n=size:65536}"),
        ("n = 64kib", "{n=size:65536}"),
        ("n = 2k", "{n=size:2000}"),
        ("n = 1G", "{n=size:1000000000}"),
        ("n = 1gb", "{n=size:1073741824}"),
        ("n = 1T", "{n=size:1000000000000}"),
        ("n = 10s", "{n=\"10s\"}"),
        // booleans
        ("b = true", "{b=true}"),
        ("b = FALSE", "{b=false}"),
        ("b = yes", "{b=true}"),
        ("b = No", "{b=false}"),
        ("b = on", "{b=true}"),
        ("b = off", "{b=false}"),
        ("b = \"true\"", "{b=\"true\"}"),
        // variables
        ("v = 1\nw = $v", "{v=1,w=1}"),
        ("v = 1\nw = ${v}", "{v=1,w=1}"),
        ("v = [a]\nw = [$v, $v]", "{v=[\"a\"],w=[[\"a\"],[\"a\"]]}"),
        ("v = 1\nm { w = $v }", "{v=1,m={w=1}}"),
        ("v = 1\nm { v = 2\n w = $v }", "{v=1,m={v=2,w=2}}"),
        ("v = 1\nl = [{w: $v}]", "{v=1,l=[{w=1}]}"),
        ("m = {a: 1}\nn = $m", "{m={a=1},n={a=1}}"),
        ("p = \"$2a$11$abc\"", "{p=\"$2a$11$abc\"}"),
        ("p = $2a$11$W2zko751KUvVy59/sSOT.xtiHyG", "{p=\"$2a$11$W2zko751KUvVy59/sSOT.xtiHyG\"}"),
        ("p = $2b$10$abc", "{p=\"$2b$10$abc\"}"),
        ("x = $WARDEN_T_NUM", "{x=123}"),
        ("x = ${WARDEN_T_STR}", "{x=\"hello\"}"),
        ("x = $WARDEN_T_QUOTED", "{x=\"two words\"}"),
        ("x = $WARDEN_T_MAP", "{x={a=1,b=[\"x\",\"y\"]}}"),
        ("x = $WARDEN_T_SIZE", "{x=size:65536}"),
        ("WARDEN_T_NUM = 7\nx = $WARDEN_T_NUM", "{WARDEN_T_NUM=7,x=7}"),
        // include is a keyword only bare, followed by a blank
        ("\"include\" = 1", "{include=1}"),
    ];
    for (text, want) in cases {
        let got = match parse(text) {
            Ok(map) => render_map(&map),
            Err(_) => "ERR".to_owned(),
        };
        assert_eq!(&got, want, "input: {text:?}");
    }
}

#[test]
fn errors_with_positions() {
    use ErrorKind::*;
    // (input, kind, line, column, part of the message)
    let cases: &[(&str, ErrorKind, u32, u32, &str)] = &[
        ("a = 1\na = 2", DuplicateKey, 2, 1, "duplicate key `a` (first set at test.conf:1:1)"),
        ("m { x = 1\n  x = 2 }", DuplicateKey, 2, 3, "duplicate key `x`"),
        ("a = $nope", Variable, 1, 5, "variable `$nope` is not defined"),
        ("a = ${nope}", Variable, 1, 5, "not defined"),
        ("w = $v\nv = 1", Variable, 1, 5, "not defined"),
        ("m { v = 1 }\nn { w = $v }", Variable, 2, 9, "not defined"),
        ("l = [{v: 1}, $v]", Variable, 1, 14, "not defined"),
        ("a = ${x", Syntax, 1, 8, "expected '}' to close '${'"),
        ("a = ${x}y", Syntax, 1, 9, "unexpected 'y'"),
        ("a = $", Syntax, 1, 5, "expected a variable name"),
        ("a = $b$c", Syntax, 1, 5, "not a valid variable name"),
        ("a = $WARDEN_T_BAD", Variable, 1, 5, "WARDEN_T_BAD does not hold a valid config value"),
        ("a = $WARDEN_T_VAR", Variable, 1, 5, "may not refer to a variable"),
        ("a = $WARDEN_T_EMPTY", Variable, 1, 5, "does not hold a valid config value"),
        ("a = \"open", Syntax, 1, 5, "unterminated string"),
        ("a = 'open", Syntax, 1, 5, "unterminated string"),
        ("a = \"\\q\"", Syntax, 1, 6, "invalid escape character 'q'"),
        ("a = \"\\x4g\"", Syntax, 1, 6, "two hexadecimal digits"),
        ("m {\n a = 1\n", Syntax, 1, 3, "never closed"),
        ("l = [1,\n 2\n", Syntax, 1, 5, "never closed"),
        ("l = [1 2]", Syntax, 1, 8, "expected ','"),
        ("l = [1,,2]", Syntax, 1, 8, "expected a value, found ','"),
        ("l = [,1]", Syntax, 1, 6, "expected a value, found ','"),
        ("a = 1 2", Syntax, 1, 7, "expected a new line, ',' or ';'"),
        ("a = 1 }", Syntax, 1, 7, "expected a key, found '}'"),
        ("}", Syntax, 1, 1, "expected a key, found '}'"),
        ("a = 1;;", Syntax, 1, 7, "expected a key, found ';'"),
        ("= 1", Syntax, 1, 1, "expected a key, found '='"),
        ("a =\n 1", Syntax, 1, 4, "expected a value, found the end of the line"),
        ("a = ", Syntax, 1, 5, "expected a value, found the end of the file"),
        ("a\nb = 1", Syntax, 1, 1, "key `a` has no value"),
        ("a", Syntax, 1, 1, "key `a` has no value"),
        ("a = ,", Syntax, 1, 5, "expected a value, found ','"),
        ("a = # c", Syntax, 1, 5, "found a comment"),
        ("a\"b\" = 1", Syntax, 1, 2, "unexpected '\"' in key"),
        ("a = b\"c\"", Syntax, 1, 6, "unexpected '\"' in an unquoted value"),
        ("a = b'c'", Syntax, 1, 6, "unexpected '''"),
        ("a = c:\\dir", Syntax, 1, 7, "unexpected '\\'"),
        ("a = b{", Syntax, 1, 6, "unexpected '{'"),
        ("a = ( text\n)", Syntax, 1, 5, "block strings"),
        ("a = 99999999999999999999", Invalid, 1, 5, "out of range"),
        ("a = 10e", Invalid, 1, 5, "out of range"),
        ("a = .5", Invalid, 1, 5, "must start with a digit"),
        ("{ a = 1 } b", Syntax, 1, 11, "after the '}'"),
        ("{ a = 1", Syntax, 1, 1, "never closed"),
        ("a = 1\nb = \u{7}", Syntax, 2, 5, "U+0007"),
        ("a = \"x\u{202e}y\"", Syntax, 1, 7, "U+202E"),
        ("a = 1\rb = 2", Syntax, 1, 6, "U+000D"),
        ("include", Syntax, 1, 8, "expected a file name"),
        ("include = x", Syntax, 1, 9, "keyword"),
        ("include \"\"", Include, 1, 9, "empty include path"),
        ("include \"/nonexistent/warden/x.conf\"", Include, 1, 9, "cannot include `/nonexistent/warden/x.conf`"),
    ];
    for (text, kind, line, column, message) in cases {
        let err = match parse(text) {
            Ok(map) => panic!("{text:?} parsed as {}", render_map(&map)),
            Err(err) => err,
        };
        assert_eq!(err.kind(), *kind, "{text:?}: {err}");
        assert_eq!((err.line(), err.column()), (Some(*line), Some(*column)), "{text:?}: {err}");
        assert!(err.message().contains(message), "{text:?}: {err}");
        assert!(err.to_string().starts_with(&format!("test.conf:{line}:{column}: ")), "{err}");
    }
}

#[test]
fn environment_values_never_appear_in_errors() {
    let err = parse("password = $WARDEN_T_SECRET").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn error_display_shows_the_line() {
    let err = parse("port: 4222\nmax_payload: 1MB\nfoo = $bar\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "test.conf:3:7: variable `$bar` is not defined: define it before this line in this \
         block or an enclosing one, or set the environment variable bar\n  |\n3 | foo = $bar\n  \
         |       ^"
    );
}

#[test]
fn invalid_utf8_is_a_positioned_error() {
    let err = parse_bytes(b"a = 1\nb = \"\xff\"", "bin.conf").unwrap_err();
    assert_eq!((err.line(), err.column()), (Some(2), Some(6)));
    assert_eq!(err.kind(), ErrorKind::Syntax);
}

#[test]
fn byte_order_mark_is_skipped() {
    let map = parse("\u{feff}a = 1").unwrap();
    assert_eq!(render_map(&map), "{a=1}");
}

#[test]
fn variable_use_is_recorded() {
    let map = parse("a = 1\nb = 2\nc = $a").unwrap();
    let used: Vec<bool> = map.entries.iter().map(|e| e.used_as_variable).collect();
    assert_eq!(used, [true, false, false]);
}

#[test]
fn positions_of_nodes() {
    let map = parse("m {\n  list = [\n    \"x\"\n  ]\n}").unwrap();
    let m = map.get("m").unwrap();
    assert_eq!((m.key_pos.line(), m.key_pos.column()), (1, 1));
    let Kind::Map(inner) = &m.value.kind else { panic!() };
    let list = inner.get("list").unwrap();
    assert_eq!((list.key_pos.line(), list.key_pos.column()), (2, 3));
    assert_eq!((list.value.pos.line(), list.value.pos.column()), (2, 10));
    let Kind::Array(items) = &list.value.kind else { panic!() };
    assert_eq!((items[0].pos.line(), items[0].pos.column()), (3, 5));
}

#[test]
fn process_environment_is_read_and_reparsed() {
    std::env::set_var("WARDEN_CONFIG_TEST_ENV_7F3A", "4096");
    let map = parse_str("max = $WARDEN_CONFIG_TEST_ENV_7F3A", "env.conf").unwrap();
    assert_eq!(render_map(&map), "{max=4096}");
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("a = {}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(parse(&deep).unwrap_err().kind(), ErrorKind::Limit);
    let ok = format!("a = {}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(&ok).is_ok());
    let maps = format!("{}{}", "a {".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
    assert_eq!(parse(&maps).unwrap_err().kind(), ErrorKind::Limit);
}

#[test]
fn nesting_through_variables_is_bounded() {
    let mut text = String::from("a0 = [1]\n");
    for i in 1..MAX_DEPTH + 2 {
        text.push_str(&format!("a{i} = [$a{}]\n", i - 1));
    }
    let err = parse(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    // `a63` is 64 levels deep; `a64 = [$a63]` (line 65) would be 65.
    assert_eq!(err.line(), Some(u32::try_from(MAX_DEPTH + 1).unwrap()));
}

#[test]
fn size_is_bounded() {
    let big = vec![b'#'; MAX_FILE_BYTES + 1];
    assert_eq!(parse_bytes(&big, "big").unwrap_err().kind(), ErrorKind::Limit);
}

#[test]
fn variable_expansion_is_bounded() {
    let mut text = String::from("a0 = [1,1,1,1,1,1,1,1,1,1]\n");
    for i in 1..12 {
        let prev = format!("$a{}", i - 1);
        text.push_str(&format!("a{i} = [{}]\n", vec![prev; 10].join(",")));
    }
    let err = parse(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}

/// A fresh directory under the system temp dir for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-config-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn include_relative_to_the_including_file() {
    let dir = temp_dir("include-relative");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("policies/admin.conf"), "admin = { publish = \">\" }\ninclude 'more/limits.conf'\n")
        .unwrap();
    std::fs::create_dir_all(dir.join("policies/more")).unwrap();
    std::fs::write(dir.join("policies/more/limits.conf"), "limit: 5\n").unwrap();
    std::fs::write(
        dir.join("conf/main.conf"),
        "port: 4222\nauthorization {\n  include \"../policies/admin.conf\"\n  users = [{user: a, permissions: $admin}]\n}\ninclude ../policies/more/limits.conf; x = 1\n",
    )
    .unwrap();
    let map = parse_file_with_env(&dir.join("conf/main.conf"), &test_env);
    let map = map.unwrap();
    assert_eq!(
        render_map(&map),
        "{port=4222,authorization={admin={publish=\">\"},limit=5,users=[{user=\"a\",permissions={publish=\">\"}}]},limit=5,x=1}"
    );
    let Kind::Map(auth) = &map.get("authorization").unwrap().value.kind else { panic!() };
    assert!(auth.get("admin").unwrap().used_as_variable);
    // Positions inside an included file name that file.
    let admin = auth.get("admin").unwrap();
    assert!(admin.key_pos.file().ends_with("admin.conf"), "{:?}", admin.key_pos);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_errors() {
    let dir = temp_dir("include-errors");
    std::fs::write(dir.join("a.conf"), "a = 1\ninclude b.conf\n").unwrap();
    std::fs::write(dir.join("b.conf"), "b = 1\n  include \"a.conf\"\n").unwrap();
    let err = parse_file_with_env(&dir.join("a.conf"), &test_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Include, "{err}");
    assert!(err.message().contains("include cycle"), "{err}");
    assert!(err.file().unwrap().ends_with("b.conf"), "{err}");
    assert_eq!((err.line(), err.column()), (Some(2), Some(11)));

    std::fs::write(dir.join("self.conf"), "include self.conf\n").unwrap();
    let err = parse_file_with_env(&dir.join("self.conf"), &test_env).unwrap_err();
    assert!(err.message().contains("include cycle"), "{err}");

    // A duplicate key between a file and what it includes.
    std::fs::write(dir.join("dup.conf"), "port = 1\ninclude port.conf\n").unwrap();
    std::fs::write(dir.join("port.conf"), "\n\nport = 2\n").unwrap();
    let err = parse_file_with_env(&dir.join("dup.conf"), &test_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DuplicateKey);
    assert!(err.file().unwrap().ends_with("port.conf"), "{err}");
    assert_eq!(err.line(), Some(3));

    // A syntax error inside an included file names that file.
    std::fs::write(dir.join("outer.conf"), "include inner.conf\n").unwrap();
    std::fs::write(dir.join("inner.conf"), "a = [1\n").unwrap();
    let err = parse_file_with_env(&dir.join("outer.conf"), &test_env).unwrap_err();
    assert!(err.file().unwrap().ends_with("inner.conf"), "{err}");

    // The same file included twice (not a cycle) is a duplicate-key error.
    std::fs::write(dir.join("twice.conf"), "include one.conf\ninclude one.conf\n").unwrap();
    std::fs::write(dir.join("one.conf"), "one = 1\n").unwrap();
    let err = parse_file_with_env(&dir.join("twice.conf"), &test_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DuplicateKey);

    // Included files do not see the includer's variables (as nats-server).
    std::fs::write(dir.join("vars.conf"), "v = 1\ninclude usesv.conf\n").unwrap();
    std::fs::write(dir.join("usesv.conf"), "w = $v\n").unwrap();
    let err = parse_file_with_env(&dir.join("vars.conf"), &test_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Variable);

    // A missing top-level file.
    let err = parse_file_with_env(&dir.join("missing.conf"), &test_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("missing.conf"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn include_depth_is_bounded() {
    let dir = temp_dir("include-depth");
    for i in 0..=MAX_INCLUDE_DEPTH + 1 {
        std::fs::write(dir.join(format!("f{i}.conf")), format!("include f{}.conf\n", i + 1)).unwrap();
    }
    std::fs::write(dir.join(format!("f{}.conf", MAX_INCLUDE_DEPTH + 2)), "x = 1\n").unwrap();
    let err = parse_file_with_env(&dir.join("f0.conf"), &test_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes_with_env(&bytes, "fuzz", &test_env);
    }

    #[test]
    fn never_panics_on_config_like_text(
        text in "([a-z$_{}\\[\\]=:;,#/\"'\\\\ \t\n.>*0-9kKmMbB-]|include |\\$WARDEN_T_MAP|true|2a\\$){0,80}"
    ) {
        match parse_bytes_with_env(text.as_bytes(), "fuzz", &test_env) {
            Ok(_) => {}
            // Every error has a position or at least a file.
            Err(e) => prop_assert!(e.file().is_some()),
        }
    }
}
