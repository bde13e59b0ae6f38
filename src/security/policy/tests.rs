use super::*;
use crate::security::token_sha256_hex;

fn cert(name: &str) -> Identity {
    Identity::Certificate(name.to_owned())
}

fn parse_error(text: &str) -> String {
    Policy::parse(text).unwrap_err().to_string()
}

const SAMPLE: &str = r#"
    [[caller]]
    certificate = "spiffe://cluster.local/ns/ci/sa/builder"
    actions = ["CreateRepository", "DescribeRepositories"]
    repositories = ["team-a/*"]

    [[caller]]
    certificate = "spiffe://cluster.local/ns/ci/sa/builder"
    actions = ["DescribeImages"]
    repositories = ["*"]

    [[caller]]
    name = "release-bot"
    token_sha256 = "5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8"
    actions = ["*"]
    repositories = ["releases/app"]
"#;

#[test]
fn grants_add_up_per_caller() {
    let policy = Policy::parse(SAMPLE).unwrap();
    let builder = cert("spiffe://cluster.local/ns/ci/sa/builder");
    assert_eq!(policy.callers(), 2);
    assert!(policy.allows(&builder, "CreateRepository", Some("team-a/app")));
    assert!(policy.allows(&builder, "DescribeImages", Some("team-b/app")));
    assert!(!policy.allows(&builder, "CreateRepository", Some("team-b/app")));
    assert!(!policy.allows(&builder, "DeleteRepository", Some("team-a/app")));
    assert!(policy.allows(&builder, "CreateRepository", None));
    assert!(!policy.allows(&builder, "GetAuthorizationToken", None));
    assert!(policy.allows_every_repository(&builder, "DescribeImages"));
    assert!(!policy.allows_every_repository(&builder, "DescribeRepositories"));
    assert!(!policy.allows(&cert("someone.else"), "DescribeImages", Some("x")));
}

#[test]
fn tokens_are_found_by_their_sha256_only() {
    let policy = Policy::parse(SAMPLE).unwrap();
    let bot = policy.token_identity("password").unwrap();
    assert_eq!(bot, Identity::Token("release-bot".into()));
    assert!(policy.allows(&bot, "DeleteRepository", Some("releases/app")));
    assert!(!policy.allows(&bot, "DeleteRepository", Some("releases/other")));
    assert_eq!(policy.token_identity("passwore"), None);
    assert_eq!(policy.token_identity(&token_sha256_hex("password")), None);
    // A certificate with the token's name is another caller.
    assert!(!policy.allows(&cert("release-bot"), "DescribeImages", Some("releases/app")));
}

#[test]
fn debug_shows_counts_not_digests() {
    let shown = format!("{:?}", Policy::parse(SAMPLE).unwrap());
    assert_eq!(shown, "Policy { callers: 2, tokens: 1 }");
}

#[test]
fn an_empty_policy_allows_nothing() {
    let policy = Policy::parse("").unwrap();
    assert_eq!(policy.callers(), 0);
    assert!(!policy.allows(&cert("a"), "DescribeImages", None));
}

#[test]
fn invalid_entries_are_refused_with_their_index() {
    let grant = "actions = [\"*\"]\nrepositories = [\"*\"]";
    let cases = [
        (
            format!("[[caller]]\n{grant}"),
            "caller[0]: set either `certificate`",
        ),
        (
            format!("[[caller]]\ncertificate = \"a\"\nname = \"b\"\n{grant}"),
            "caller[0]: set either",
        ),
        (
            format!("[[caller]]\nname = \"b\"\n{grant}"),
            "caller[0]: set either",
        ),
        (
            format!("[[caller]]\ncertificate = \"\"\n{grant}"),
            "caller[0]: set either",
        ),
        (
            format!("[[caller]]\nname = \"b\"\ntoken_sha256 = \"s3cr3t\"\n{grant}"),
            "caller[0]: token_sha256 must be 64 hex digits",
        ),
        (
            "[[caller]]\ncertificate = \"a\"\nactions = []\nrepositories = [\"*\"]".to_owned(),
            "caller[0]: actions must not be empty",
        ),
        (
            "[[caller]]\ncertificate = \"a\"\nactions = [\"*\"]\nrepositories = []".to_owned(),
            "caller[0]: repositories must not be empty",
        ),
        (
            "[[caller]]\ncertificate = \"a\"\nactions = [\"*\"]\nrepositories = [\"x\", \"\"]"
                .to_owned(),
            "caller[0]: repositories[1] must not be empty",
        ),
        (
            format!(
                "[[caller]]\ncertificate = \"a\"\n{grant}\n[[caller]]\ncertificate = \"b\"\n\
                 actions = [\"PutLifecyclePolicy\"]\nrepositories = [\"*\"]"
            ),
            "caller[1]: unknown action \"PutLifecyclePolicy\"",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_error(&text);
        assert!(error.starts_with(expected), "{text:?}: {error}");
        assert!(!error.contains("s3cr3t"), "{error}");
    }
}

#[test]
fn unknown_keys_and_bad_toml_are_refused() {
    let error = parse_error("[[caller]]\ncertificate = \"a\"\naction = [\"*\"]");
    assert!(error.contains("unknown field `action`"), "{error}");
    assert!(!parse_error("[[caller]\n").is_empty());
    assert!(parse_error("callers = []").contains("unknown field `callers`"));
}

#[test]
fn one_token_cannot_belong_to_two_callers() {
    let digest = token_sha256_hex("t");
    let entry = |name: &str| {
        format!(
            "[[caller]]\nname = \"{name}\"\ntoken_sha256 = \"{digest}\"\n\
             actions = [\"*\"]\nrepositories = [\"*\"]\n"
        )
    };
    let error = parse_error(&format!("{}{}", entry("a"), entry("b")));
    assert_eq!(
        error,
        "caller[1]: token_sha256 is already the token of caller \"a\""
    );
    // The same token listed twice for one caller is just two grants.
    assert!(Policy::parse(&format!("{}{}", entry("a"), entry("a"))).is_ok());
}

#[test]
fn globs_match_any_run_of_characters() {
    let cases = [
        ("*", "", true),
        ("*", "a/b", true),
        ("team-a/*", "team-a/app", true),
        ("team-a/*", "team-a/x/y", true),
        ("team-a/*", "team-a", false),
        ("team-a/*", "team-ab/app", false),
        ("team-a", "team-a", true),
        ("team-a", "team-a/app", false),
        ("*/app", "team-a/app", true),
        ("*/app", "team-a/app2", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "abcbc", true),
        ("a*b*c", "acb", false),
        ("a**", "a", true),
        ("", "", true),
        ("", "a", false),
    ];
    for (pattern, name, expected) in cases {
        assert_eq!(
            glob_match(pattern, name),
            expected,
            "{pattern:?} ~ {name:?}"
        );
    }
}

#[test]
fn toml_errors_name_the_line() {
    let error = parse_error("[[caller]]\ncertificate = \"a\"\nactions = 3\nrepositories = [\"*\"]");
    assert_eq!(
        error,
        "line 3: invalid type: integer `3`, expected a sequence"
    );
}

#[test]
fn the_documented_examples_parse() {
    let example = Policy::parse(include_str!("../../../deploy/policy.example.toml")).unwrap();
    assert_eq!(example.callers(), 3);
    let bot = example.token_identity("password").unwrap();
    assert!(example.allows(&bot, "DeleteRepository", Some("releases/app")));
    let production = Some("210987654321");
    assert!(example.allows_in(&bot, "DeleteRepository", production, Some("releases/app")));
    assert!(!example.allows_in(
        &bot,
        "DeleteRepository",
        Some("999999999999"),
        Some("releases/app")
    ));

    let module_docs = include_str!("../mod.rs");
    let doc_lines: Vec<&str> = module_docs
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect();
    let start = doc_lines.iter().position(|l| *l == "```toml").unwrap() + 1;
    let end = start + doc_lines[start..].iter().position(|l| *l == "```").unwrap();
    let documented = Policy::parse(&doc_lines[start..end].join("\n")).unwrap();
    assert_eq!(documented.callers(), 3);
}

const REGISTRIES: &str = r#"
    own_registry_id = "123456789012"

    [[caller]]
    certificate = "own-only"
    actions = ["*"]
    repositories = ["*"]

    [[caller]]
    certificate = "cross"
    actions = ["DescribeImages"]
    repositories = ["shared/*"]
    registries = ["own", "999999999999"]

    [[caller]]
    certificate = "elsewhere"
    actions = ["*"]
    repositories = ["*"]
    registries = ["999999999999"]

    [[caller]]
    certificate = "anywhere"
    actions = ["*"]
    repositories = ["*"]
    registries = ["*"]
"#;

#[test]
fn without_registries_a_grant_covers_the_own_registry_only() {
    let policy = Policy::parse(REGISTRIES).unwrap();
    let own = cert("own-only");
    assert!(policy.allows_in(&own, "CreateRepository", None, Some("a")));
    // Naming the own account explicitly is still the own registry.
    assert!(policy.allows_in(&own, "CreateRepository", Some("123456789012"), Some("a")));
    assert!(!policy.allows_in(&own, "CreateRepository", Some("999999999999"), Some("a")));
    assert!(!policy.allows_every_repository_in(&own, "CreateRepository", Some("999999999999")));
    assert!(policy.allows_every_repository_in(&own, "CreateRepository", None));
}

#[test]
fn registries_list_accounts_own_and_any() {
    let policy = Policy::parse(REGISTRIES).unwrap();
    let cross = cert("cross");
    for registry in [None, Some("123456789012"), Some("999999999999")] {
        assert!(policy.allows_in(&cross, "DescribeImages", registry, Some("shared/x")));
    }
    assert!(!policy.allows_in(
        &cross,
        "DescribeImages",
        Some("111111111111"),
        Some("shared/x")
    ));

    // Listing another account does not imply the own one.
    let elsewhere = cert("elsewhere");
    assert!(policy.allows_in(
        &elsewhere,
        "DeleteRepository",
        Some("999999999999"),
        Some("x")
    ));
    assert!(!policy.allows_in(&elsewhere, "DeleteRepository", None, Some("x")));
    assert!(!policy.allows_in(
        &elsewhere,
        "DeleteRepository",
        Some("123456789012"),
        Some("x")
    ));

    let anywhere = cert("anywhere");
    for registry in [None, Some("123456789012"), Some("111111111111")] {
        assert!(policy.allows_every_repository_in(&anywhere, "DeleteRepository", registry));
    }
}

#[test]
fn without_own_registry_id_only_an_absent_registry_id_is_the_own_registry() {
    let policy =
        Policy::parse(&REGISTRIES.replace("own_registry_id = \"123456789012\"", "")).unwrap();
    assert!(policy.is_own_registry(None));
    assert!(!policy.is_own_registry(Some("123456789012")));
    let own = cert("own-only");
    assert!(!policy.allows_in(&own, "DescribeImages", Some("123456789012"), Some("a")));
}

#[test]
fn invalid_registries_are_refused() {
    let entry = "[[caller]]\ncertificate = \"a\"\nactions = [\"*\"]\nrepositories = [\"*\"]\n";
    let cases = [
        (
            format!("{entry}registries = []"),
            "caller[0]: registries must not be empty",
        ),
        (
            format!("{entry}registries = [\"own\", \"12345\"]"),
            "caller[0]: registries[1] must be a 12-digit aws account id",
        ),
        (
            format!("{entry}registries = [\"team-a/*\"]"),
            "caller[0]: registries[0] must be a 12-digit aws account id",
        ),
        (
            format!("own_registry_id = \"own\"\n{entry}"),
            "own_registry_id must be a 12-digit aws account id",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_error(&text);
        assert!(error.starts_with(expected), "{text:?}: {error}");
    }
}
