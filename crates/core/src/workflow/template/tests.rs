//! Unit tests of the template module.

use super::*;

#[test]
fn offsets_become_character_columns() {
    let s = "ab\nçd{{ x }}\n";
    assert_eq!(offset_to_pos(s, 0), Pos::new(1, 1));
    assert_eq!(offset_to_pos(s, 3), Pos::new(2, 1));
    assert_eq!(offset_to_pos(s, s.find("{{").unwrap()), Pos::new(2, 3));
}

#[test]
fn identifiers_are_found_outside_strings_and_attributes() {
    assert_eq!(find_identifier("custmer.first_name", "custmer"), Some(0));
    assert_eq!(find_identifier("'custmer' ~ custmer", "custmer"), Some(12));
    assert_eq!(find_identifier("customer.custmer", "custmer"), None);
    assert_eq!(find_identifier("xcustmer", "custmer"), None);
}

/// An undefined name is reported at its first use inside a tag: not in text, comments or
/// strings (a `}}` inside a string does not end the tag).
#[test]
fn undefined_names_are_placed_at_their_first_use_inside_tags() {
    let src = "<p>custmer</p>{# {{ custmer }} #}\n<p>{{ '}}' ~ custmer.first_name }}</p>";
    let mut diags = Vec::new();
    Templates::default().add(
        "t.html",
        src,
        &mut Sink::new(Path::new("t.html"), &mut diags),
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].pos, Pos::new(2, 14), "{}", diags[0]);
}

/// Found while fuzzing issue 11: every undefined name was searched for again in the whole
/// template, so 60 KB of `{{ a1 }}{{ a2 }}...` took seconds. Each is placed from one scan.
#[test]
fn thousands_of_undefined_names_are_each_placed_at_their_use() {
    let src: String = (0..6_000).map(|i| format!("{{{{ a{i} }}}}")).collect();
    let mut diags = Vec::new();
    Templates::default().add(
        "t.html",
        &src,
        &mut Sink::new(Path::new("t.html"), &mut diags),
    );
    assert_eq!(diags.len(), 6_000);
    for d in &diags {
        let name = d.message.split('`').nth(1).unwrap();
        let col = src.find(&format!("{{{{ {name} }}}}")).unwrap() + 4;
        assert_eq!(d.pos, Pos::new(1, col as u32), "{d}");
    }
}

#[test]
fn mjml_compiles_and_keeps_template_tags() {
    let src = r#"<mjml><mj-body><mj-section><mj-column>
<mj-text>Hi {{ customer.first_name | default('there') }}</mj-text>
<mj-button href="{{ links.unsubscribe }}">Unsubscribe</mj-button>
</mj-column></mj-section></mj-body></mjml>"#;
    let html = compile_mjml(src).unwrap().html;
    assert!(
        html.contains("{{ customer.first_name | default('there') }}"),
        "{html}"
    );
    assert!(html.contains("{{ links.unsubscribe }}"), "{html}");
}

#[test]
fn mjml_errors_point_at_their_line() {
    let src = "<mjml>\n<mj-body>\n<mj-section>\n<mj-image src=x />\n</mj-section></mj-body></mjml>";
    let MjmlError { pos, message: msg } = compile_mjml(src).unwrap_err();
    assert_eq!(pos, Pos::new(4, 10), "{msg}");
    assert_eq!(
        msg,
        "invalid MJML: invalid attribute: expected quote mark not 'x'"
    );
}

#[test]
fn unknown_mjml_elements_are_named() {
    let src = "<mjml><mj-body>\n  <mj-colum></mj-colum></mj-body></mjml>";
    let MjmlError { pos, message: msg } = compile_mjml(src).unwrap_err();
    assert_eq!(pos, Pos::new(2, 4));
    assert_eq!(
        msg,
        "unknown MJML element `<mj-colum>`; did you mean `mj-column`?"
    );
}

#[test]
fn template_tags_between_mjml_elements_survive_compilation() {
    let src = "<mjml><mj-body><mj-section>\n{% if x %}<mj-column><mj-text>hi</mj-text></mj-column>{% endif %}</mj-section></mj-body></mjml>";
    let html = compile_mjml(src).unwrap().html;
    let (open, close) = (
        html.find("{% if x %}").unwrap(),
        html.find("{% endif %}").unwrap(),
    );
    assert!(open < html.find("hi").unwrap() && html.find("hi").unwrap() < close);
}

#[test]
fn html_is_escaped_in_email_bodies_only() {
    let mut env = environment();
    env.add_template("a.mjml", "{{ name }}").unwrap();
    let out = env
        .get_template("a.mjml")
        .unwrap()
        .render(minijinja::context! { name => "<b>&" })
        .unwrap();
    assert_eq!(out, "&lt;b&gt;&amp;");
    let ctx = minijinja::context! { name => "Seán O'Brien & Co <x>" };
    // Subjects, preheaders, profile values and webhook strings are compiled without a name.
    let subject = env
        .template_from_str("Welcome, {{ name }}")
        .unwrap()
        .render(&ctx)
        .unwrap();
    assert_eq!(subject, "Welcome, Seán O'Brien & Co <x>");
    assert_eq!(
        env.render_str("{{ name }}", &ctx).unwrap(),
        "Seán O'Brien & Co <x>"
    );
}

#[test]
fn undefined_values_render_empty() {
    let env = environment();
    let out = env
        .render_str(
            "[{{ customer.address.city }}]",
            minijinja::context! { customer => minijinja::context!{} },
        )
        .unwrap();
    assert_eq!(out, "[]");
}

/// Checks `source` both as a scalar (expression and template) and as a template file, the way
/// `validate` does, with an undefined name in it so that the name scanner runs.
fn check_everywhere(source: &str) {
    let env = environment();
    let yaml = format!("subject: \"{}\"\n", source.replace('"', "\\\""));
    let checker = ScalarChecker::new(&env, &yaml);
    let mut diags = Vec::new();
    let path = Path::new("w.yaml");
    let mut sink = Sink::new(path, &mut diags);
    for kind in [ScalarKind::Expression, ScalarKind::Template] {
        checker.check(&mut sink, source, Pos::new(1, 10), kind, SCOPE);
    }
    let mut templates = Templates::default();
    templates.add("t.html", source, &mut sink);
}

/// The messages `validate` gives for `source` as a template file and as a YAML subject.
fn problems(source: &str) -> (Vec<String>, Vec<String>) {
    let env = environment();
    let yaml = format!("subject: \"{source}\"\n");
    let checker = ScalarChecker::new(&env, &yaml);
    let mut in_file = Vec::new();
    Templates::default().add(
        "t.html",
        source,
        &mut Sink::new(Path::new("t.html"), &mut in_file),
    );
    let mut in_yaml = Vec::new();
    let mut sink = Sink::new(Path::new("w.yaml"), &mut in_yaml);
    checker.check(
        &mut sink,
        source,
        Pos::new(1, 10),
        ScalarKind::Template,
        SCOPE,
    );
    let shown = |d: Vec<crate::diagnostic::Diagnostic>| {
        d.into_iter()
            .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect()
    };
    (shown(in_file), shown(in_yaml))
}

#[test]
fn a_call_of_an_unknown_name_is_an_unknown_function_not_a_variable() {
    let (file, yaml) = problems("Çok {{ fiyat(customer.x) }} {{ range(2) | list }}");
    assert_eq!(file.len(), 1, "{file:?}");
    assert!(
        file[0].starts_with("1:8: unknown function `fiyat` (functions: "),
        "{file:?}"
    );
    assert_eq!(yaml.len(), 1, "{yaml:?}");
    assert!(
        yaml[0].starts_with("1:18: unknown function `fiyat`"),
        "{yaml:?}"
    );
    // Read, not called: still an undefined variable; macros and `set` names are fine.
    let (file, _) = problems("{% macro m() %}{% endmacro %}{% set s = 1 %}{{ m() ~ s ~ fiyat }}");
    assert_eq!(file.len(), 1, "{file:?}");
    assert!(
        file[0].starts_with("1:58: undefined variable `fiyat`"),
        "{file:?}"
    );
}

#[test]
fn unknown_filters_and_tests_are_errors_at_their_names_in_files_and_scalars() {
    let (file, yaml) =
        problems("Fiyat: {{ event.order.total | money }} {% if 'a | b' is evn %}{% endif %}");
    assert_eq!(file.len(), 2, "{file:?}");
    assert!(
        file[0].starts_with("1:31: unknown filter `money` (every render"),
        "{file:?}"
    );
    assert!(
        file[1].starts_with("1:57: unknown test `evn`; did you mean `even`? (every render"),
        "{file:?}"
    );
    assert_eq!(yaml.len(), 2, "{yaml:?}");
    assert!(
        yaml[0].starts_with("1:41: unknown filter `money`"),
        "{yaml:?}"
    );
}

#[test]
fn names_next_to_multibyte_text_are_found_without_panicking() {
    assert_eq!(find_identifier("\"a\\\"ğ\" ~ custmer", "custmer"), Some(10));
    assert_eq!(find_identifier("Hoş custmer", "custmer"), Some(5));
    check_everywhere("Hoş geldin {{ custmer.first_name }}");
    check_everywhere("{{ \"a\\\"ğ\" ~ custmer.first_name }}");
    check_everywhere("\"a\\\"ğ\" ~ custmer.first_name");
}

proptest::proptest! {
    /// Multi-byte characters (2, 3 and 4 bytes in UTF-8) at every position of expressions and
    /// templates: validation reports, it never panics.
    #[test]
    fn multibyte_text_anywhere_never_panics(
        base in proptest::sample::select(vec![
            "Hoş geldin {{ custmer.first_name }}",
            "{{ \"a\\\"b\" ~ custmer.first_name }}",
            "custmer.first_name == 'x\\'y' and customer.tags",
            "{% if custmer %}{{ custmer.a | upper }}{% endif %}",
            "{{ 'it''s' ~ custmer }} {{ customer.x }}",
            "{{ x | mony }}{% if a is evn %}{{ fmt(a) }}{% endif %}{# {{ y | nope }} #}",
        ]),
        ch in proptest::sample::select(vec!['ğ', 'ş', '€', '😀', 'ı', '\u{301}']),
        at in 0usize..64,
    ) {
        let mut chars: Vec<char> = base.chars().collect();
        let at = at.min(chars.len());
        chars.insert(at, ch);
        let source: String = chars.into_iter().collect();
        check_everywhere(&source);
        let _ = find_identifier(&source, "custmer");
    }
}

/// Text at the bounds compiles and renders on a test thread (2 MiB of stack, like the threads
/// `simulate` renders on), unoptimised; one step past them is reported, not parsed.
#[test]
fn text_at_the_bounds_compiles_on_a_small_stack_and_past_them_is_reported() {
    use limits::{MAX_EXPRESSION_OPERATORS as OPS, MAX_MJML_DEPTH as DEPTH};
    let env = environment();
    let sum = |n: usize| format!("{{{{ 1{} }}}}", " + 1".repeat(n));
    let filters = |n: usize| format!("{{{{ 'a'{} }}}}", " | upper".repeat(n));
    for at_limit in [sum(OPS), filters(OPS)] {
        assert!(limits::check_template(&at_limit).is_ok());
        env.render_str(&at_limit, ()).unwrap();
    }
    assert!(limits::check_expression(&format!("1{}", " ~ 1".repeat(OPS))).is_ok());
    for over in [sum(OPS + 1), filters(OPS + 1)] {
        let e = limits::check_template(&over).unwrap_err();
        assert!(e.message.contains("more than 300 operators"), "{e:?}");
    }
    // Operators inside string literals and comments do not count.
    let quoted = format!(
        "{{{{ '{}' }}}}{{# {} #}}",
        "+".repeat(1000),
        "+".repeat(1000)
    );
    assert!(limits::check_template(&quoted).is_ok());
    let wrappers = |n: usize| {
        format!(
            "<mjml><mj-body>{}{}</mj-body></mjml>",
            "<mj-wrapper>".repeat(n),
            "</mj-wrapper>".repeat(n)
        )
    };
    compile_mjml(&wrappers(DEPTH - 2)).unwrap();
    let e = compile_mjml(&wrappers(DEPTH - 1)).unwrap_err();
    assert_eq!(
        e.pos,
        Pos::new(1, (1 + 15 + 12 * (DEPTH - 2)) as u32),
        "{e:?}"
    );
    assert!(e.message.contains("more than 50 levels"), "{e:?}");
    // Siblings, void and self-closed elements and comments open no level.
    let flat = format!(
        "<mjml><mj-body>{}<br><img src=\"x\"/><!-- <a><a><a> --></mj-body></mjml>",
        "<mj-section></mj-section>".repeat(500)
    );
    assert!(limits::check_mjml_depth(&flat).is_ok());
}

#[test]
fn renders_stop_at_the_fuel_and_size_limits() {
    let env = environment();
    let ctx = minijinja::Value::from(());
    let endless = env
        .template_from_str(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap();
    let e = render(&endless, &ctx).unwrap_err();
    assert_eq!(e.kind(), minijinja::ErrorKind::OutOfFuel);
    assert!(
        render_failure(&e).contains("over the limit of 1000000 steps"),
        "{e}"
    );
    let big = format!("{{{{ 'x' * {} }}}}", MAX_RENDERED_BYTES + 1);
    let e = render(&env.template_from_str(&big).unwrap(), &ctx).unwrap_err();
    assert_eq!(
        render_failure(&e),
        "rendered output is over the limit of 1048576 bytes"
    );
    let exact = format!("{{{{ 'x' * {MAX_RENDERED_BYTES} }}}}");
    let out = render(&env.template_from_str(&exact).unwrap(), &ctx).unwrap();
    assert_eq!(out.len(), MAX_RENDERED_BYTES);
    // Other failures name their kind and line, never their detail (which may quote data).
    let e = render(
        &env.template_from_str("\n{{ 'secret' + 1 }}").unwrap(),
        &ctx,
    )
    .unwrap_err();
    assert_eq!(render_failure(&e), "invalid operation at <string>:2");
}

/// Nesting of blocks, brackets and unary operators: what is allowed compiles and renders on a
/// test thread's stack (2 MiB, about twice what it needs); past the bounds it is refused by the
/// scan before any recursion could overflow.
#[test]
fn nested_blocks_brackets_and_unary_operators_are_bounded() {
    use limits::MAX_EXPRESSION_OPERATORS as OPS;
    use limits::{MAX_BLOCK_DEPTH as BLOCKS, MAX_BRACKET_DEPTH as BRACKETS};
    let env = environment();
    let blocks = |n: usize| format!("{}x{}", "{% if true %}".repeat(n), "{% endif %}".repeat(n));
    let nots = |n: usize| format!("{{{{ {}1 }}}}", "not ".repeat(n));
    let parens = |n: usize| format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
    for allowed in [blocks(BLOCKS), nots(OPS), parens(BRACKETS)] {
        limits::check_template(&allowed).unwrap();
        env.render_str(&allowed, ()).unwrap();
    }
    let e = limits::check_template(&blocks(BLOCKS + 1)).unwrap_err();
    assert_eq!(e.offset, "{% if true %}".len() * BLOCKS);
    assert!(e.message.contains("more than 50 levels"), "{e:?}");
    assert!(limits::check_template(&nots(OPS + 1)).is_err());
    let e = limits::check_template(&parens(BRACKETS + 1)).unwrap_err();
    assert_eq!(e.offset, 3 + BRACKETS);
    assert!(e.message.contains("more than 30 levels"), "{e:?}");
    // Siblings and `{% set x = ... %}` open no level; `{% set x %}` does until `{% endset %}`.
    let flat = "{% if a %}{% endif %}{% set x = 1 %}{% set y %}z{% endset %}".repeat(1_000);
    limits::check_template(&flat).unwrap();
    // Past our bounds, minijinja's parser would refuse blocks and brackets itself (it allows
    // about 150 and 75 levels), but only after using more stack than a thread may have.
}

/// Found by fuzzing (`check_template`, `load_project`): htmlparser, under mrml, panicked on a
/// conditional comment without `]>`; it is an error at the comment, and a well-formed one
/// still compiles.
#[test]
fn a_broken_conditional_comment_is_an_error_at_it_not_a_panic() {
    for (src, line) in [
        ("<!--[if--><mjml", 1),
        (
            "<mjml><mj-body>\n<mj-raw><!--[if--></mj-raw></mj-body></mjml>",
            2,
        ),
        ("<mjml><mj-body><mj-raw><!--[if mso", 1),
        (
            "<mjml><mj-body><mj-raw><![endif]x</mj-raw></mj-body></mjml>",
            1,
        ),
        ("<mjml><mj-body><mj-raw><!--<![endif", 1),
        ("<mjml><mj-body><mj-raw><![if !mso]-", 1),
    ] {
        let err = compile_mjml(src).unwrap_err();
        assert_eq!(err.pos.line, line, "{src:?}: {err:?}");
        assert!(err.message.contains("conditional comment"), "{err:?}");
    }
    for fine in [
        "<mjml><mj-body><mj-raw><!--[if mso]><p>x</p><![endif]--></mj-raw></mj-body></mjml>",
        "<mjml><mj-body><mj-raw><![if !mso]><p>x</p><![endif]></mj-raw></mj-body></mjml>",
    ] {
        assert!(compile_mjml(fine).is_ok(), "{fine}");
    }
}

/// The backstop for parser bugs not yet known: a panic inside mrml is an error, not the end
/// of the command.
#[test]
fn a_panic_inside_the_mjml_parser_is_an_error() {
    let Err(err) = mjml::parse_without_panic("<!--[if--><mjml") else {
        panic!("the parser's panic was not caught");
    };
    assert_eq!(err.pos, Pos::new(1, 1));
    assert!(err.message.contains("MJML parser failed"), "{err:?}");
}

/// Found by fuzzing (`check_template`): htmlparser looks two bytes back from a text's first
/// `>` and panicked when that cut a character.
#[test]
fn a_text_angle_bracket_after_a_multibyte_character_is_an_error_not_a_panic() {
    for text in ["5€>", "şa>", "x →>"] {
        let src = format!(
            "<mjml><mj-body><mj-section><mj-column><mj-text>{text}</mj-text></mj-column></mj-section></mj-body></mjml>"
        );
        let err = compile_mjml(&src).unwrap_err();
        assert!(err.message.contains("&gt;"), "{text}: {err:?}");
        assert_eq!(err.pos.line, 1);
    }
    // In tags and quoted attributes, and after ASCII or a two-byte character, `>` is fine.
    for fine in [
        r#"<mjml><mj-body><mj-section><mj-column><mj-text css-class="€">a ş> b</mj-text></mj-column></mj-section></mj-body></mjml>"#,
        "<mjml><mj-body><mj-section><mj-column><mj-text>{% if 2 > 1 %}€{% endif %}</mj-text></mj-column></mj-section></mj-body></mjml>",
    ] {
        assert!(compile_mjml(fine).is_ok(), "{fine}");
    }
}

/// Found while fuzzing issue 11: the checker split its YAML file with `str::lines`, which
/// does not end a line at a lone `\r` as YAML does, so a problem inside a scalar on such a
/// line was placed at the scalar's start instead of at the name.
#[test]
fn positions_inside_scalars_count_lines_as_yaml_does() {
    let env = environment();
    for end in ["\n", "\r\n", "\r"] {
        let yaml = format!("id: x{end}subject: \"Çay {{{{ custmer.first_name }}}}\"{end}");
        let checker = ScalarChecker::new(&env, &yaml);
        let mut diags = Vec::new();
        let mut sink = Sink::new(Path::new("w.yaml"), &mut diags);
        let source = "Çay {{ custmer.first_name }}";
        checker.check(
            &mut sink,
            source,
            Pos::new(2, 10),
            ScalarKind::Template,
            SCOPE,
        );
        assert_eq!(diags.len(), 1, "{end:?}: {diags:?}");
        assert_eq!(diags[0].pos, Pos::new(2, 18), "{end:?}: {}", diags[0]);
    }
}

/// Found while fuzzing issue 11: in a YAML scalar each undefined name was searched for again
/// in the whole scalar, and each position inside it recounted the line (16 s for a 55 KB
/// subject of `{{ a1 }}{{ a2 }}...`, 5.6 s for one of `customer.aN` reads). Now the names are
/// placed from one scan and the columns counted once.
#[test]
fn thousands_of_names_in_one_scalar_are_each_placed_at_their_use() {
    let env = environment();
    let source: String = (0..5_000).map(|i| format!("ş{{{{ a{i} }}}}")).collect();
    let yaml = format!("subject: \"{source}\"\n");
    let checker = ScalarChecker::new(&env, &yaml);
    let mut diags = Vec::new();
    let mut sink = Sink::new(Path::new("w.yaml"), &mut diags);
    checker.check(
        &mut sink,
        &source,
        Pos::new(1, 10),
        ScalarKind::Template,
        SCOPE,
    );
    assert_eq!(diags.len(), 5_000);
    for d in &diags {
        let name = d.message.split('`').nth(1).unwrap();
        let byte = source.find(&format!("{{{{ {name} }}}}")).unwrap() + 3;
        let col = 11 + source[..byte].chars().count();
        assert_eq!(d.pos, Pos::new(1, col as u32), "{d}");
    }
}
