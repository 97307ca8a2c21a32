use super::*;

#[test]
fn project_merges_over_global() {
    let mut config = Config::default();
    config
        .merge_text(
            Path::new("global.toml"),
            "default_agent = \"a\"\n[agents.a]\nkind = \"openai\"\nbase_url = \"http://x/v1\"\nmodel = \"m\"\n[models]\nfast = \"m\"\n",
        )
        .unwrap();
    config
        .merge_text(
            Path::new("project.toml"),
            "default_agent = \"b\"\n[agents.b]\nkind = \"acp\"\ncommand = [\"qwen\", \"--acp\"]\nlane = \"local\"\n",
        )
        .unwrap();
    assert_eq!(config.default_agent_name().unwrap(), "b");
    assert_eq!(config.agent_names(), vec!["a", "b"]);
    assert_eq!(config.agents["b"].lane(), Lane::Local);
    assert_eq!(config.agents["a"].model(), Some("m"));
    assert_eq!(config.resolve_model("fast"), "m");
    assert_eq!(config.resolve_model("other"), "other");
}

#[test]
fn each_kind_takes_its_own_keys_with_defaults() {
    let mut config = Config::default();
    config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"acp\"\ncommand = [\"qwen\", \"--acp\"]\nenv = { A = \"1\" }\nwarm = false\npermissions = \"deny\"\n",
        )
        .unwrap();
    let mut expected = AcpAgent::new(vec!["qwen".into(), "--acp".into()]);
    expected.env.insert("A".into(), "1".into());
    expected.warm = false;
    expected.permissions = Permissions::Deny;
    assert_eq!(config.agents["q"], AgentConfig::Acp(expected));
    assert_eq!(config.agents["q"].target(), "qwen --acp");
}

#[test]
fn errors_name_the_file_and_key() {
    let mut config = Config::default();
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"acp\"\ncomand = [\"q\"]\n",
        )
        .unwrap_err();
    assert!(
        err.0.contains("p.toml") && err.0.contains("comand") && err.0.contains("[agents.q]"),
        "{err}"
    );
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "\n[agents.q]\nkind = \"openai\"\nmodel = \"m\"\n",
        )
        .unwrap_err();
    assert!(
        err.0.starts_with("p.toml:2: [agents.q] base_url: missing"),
        "{err}"
    );
    // A key of the other kind is refused, not ignored.
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"acp\"\ncommand = [\"q\"]\nbase_url = \"http://x/v1\"\n",
        )
        .unwrap_err();
    assert!(err.0.contains("base_url"), "{err}");
    let err = config
        .merge_text(Path::new("p.toml"), "[agents.q]\ncommand = [\"q\"]\n")
        .unwrap_err();
    assert!(err.0.contains("[agents.q] kind: missing"), "{err}");
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"openai\"\nbase_url = \"\"\nmodel = \"m\"\n",
        )
        .unwrap_err();
    assert!(err.0.contains("[agents.q] base_url: empty"), "{err}");
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"acp\"\ncommand = [\"q\"]\nmax_live = 0\n",
        )
        .unwrap_err();
    assert!(
        err.0.contains("[agents.q] max_live: must be from 1"),
        "{err}"
    );
}

#[test]
fn missing_agents_explain_how_to_configure_one() {
    let err = Config::default().default_agent_name().unwrap_err();
    assert!(
        err.0.contains("[agents.local]") && err.0.contains("booflow init"),
        "{err}"
    );
    let searched = Config {
        looked_for: Some("ACP agents on PATH (qwen)".into()),
        ..Config::default()
    };
    let err = searched.default_agent_name().unwrap_err();
    assert!(
        err.0.contains("looked for ACP agents on PATH (qwen)"),
        "{err}"
    );
}

#[test]
fn a_detected_agent_is_taken_only_when_none_is_configured() {
    let mut config = Config::default();
    let agent = AgentConfig::Openai(OpenAiAgent::new("http://127.0.0.1:1/v1", "m"));
    config.adopt_detected("found", agent.clone());
    assert_eq!(config.default_agent_name().unwrap(), "found");
    assert!(config.is_detected("found"));
    config.adopt_detected("second", agent);
    assert_eq!(config.agent_names(), vec!["found"]);
}

#[test]
fn a_written_table_reads_back_as_the_same_agent() {
    let mut acp = AcpAgent::new(vec!["goose".into(), "acp".into()]);
    acp.auth_method = Some("x".into());
    let mut openai = OpenAiAgent::new("http://127.0.0.1:8080/v1", "m");
    openai.api_key_env = Some("KEY".into());
    openai.lane = Lane::Local;
    for agent in [AgentConfig::Acp(acp), AgentConfig::Openai(openai)] {
        let text = table_text("a", &agent);
        let mut config = Config::default();
        config.merge_text(Path::new("init.toml"), &text).unwrap();
        assert_eq!(config.agents["a"], agent, "{text}");
    }
}

#[test]
fn an_openai_agent_has_no_cap_of_its_own_unless_set() {
    let mut config = Config::default();
    config
        .merge_text(
            Path::new("p.toml"),
            "[agents.free]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\n\
             [agents.capped]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nmax_concurrent = 3\n\
             [agents.old]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nmax_live = 2\n\
             [agents.gpu]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nlane = \"local\"\n",
        )
        .unwrap();
    assert_eq!(config.agents["free"].max_in_flight(), None);
    assert_eq!(
        config.agents["capped"].configured_cap(),
        Some(("max_concurrent", 3))
    );
    assert_eq!(config.agents["old"].max_in_flight(), Some(2));
    assert_eq!(config.agents["gpu"].max_in_flight(), Some(1));
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nmax_concurrent = 0\n",
        )
        .unwrap_err();
    assert!(
        err.0.contains("[agents.q] max_concurrent: must be from 1"),
        "{err}"
    );
}

#[test]
fn permissions_take_ask_and_a_bad_value_names_the_allowed_ones() {
    let mut config = Config::default();
    config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"acp\"\ncommand = [\"q\"]\npermissions = \"ask\"\n",
        )
        .unwrap();
    assert_eq!(
        config.agents["q"].permissions(),
        Some(Permissions::Ask),
        "docs/DESIGN.md §4"
    );
    let err = config
        .merge_text(
            Path::new("p.toml"),
            "[agents.q]\nkind = \"acp\"\ncommand = [\"q\"]\npermissions = \"prompt\"\n",
        )
        .unwrap_err();
    // The file, the table, the bad value and the allowed ones (the `kind`-tagged table
    // loses the key: the message does not name `permissions`).
    assert!(
        err.0.contains("p.toml")
            && err.0.contains("[agents.q]")
            && err.0.contains("`prompt`")
            && ["`allow`", "`deny`", "`ask`"]
                .iter()
                .all(|v| err.0.contains(v)),
        "{err}"
    );
}
