//! Customer data in logs: [`CustomerData`] collects the addresses and names that inputs carry
//! (store events, Shopify payloads, SES notifications) and [`CustomerData::find_in`] finds any
//! of them in text, such as a captured log. The tests that run a tool over those inputs with
//! its most verbose logging use it to prove that no log line carries a customer's address or
//! name.
//!
//! What counts:
//! - an **address** is any string value of the inputs that holds an `@` between a non-empty
//!   local part and a domain with a dot, minus the addresses passed to [`CustomerData::except`]
//!   (the store's own sender). It is found case-insensitively, as written or with the `@`
//!   percent-encoded (`%40`, as in a URL);
//! - a **name** is the string value of a key in [`NAME_KEYS`] (a customer's, a billing or
//!   shipping address's first and last name). It is found as a whole word (no letter or digit
//!   just before or after it), with its case as given.

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;

/// The keys whose string values are a person's name.
pub const NAME_KEYS: &[&str] = &["first_name", "last_name", "firstName", "lastName"];

/// A customer's address or name found where it must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// What was found (an address or a name of the inputs).
    pub needle: String,
    /// The 1-based number of the line it is on.
    pub line: usize,
    /// That line.
    pub text: String,
}

/// The addresses and names of a set of inputs (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct CustomerData {
    addresses: BTreeSet<String>,
    names: BTreeSet<String>,
    except: BTreeSet<String>,
}

impl CustomerData {
    /// No address and no name yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Addresses that are not a customer's (the sender's), never reported.
    pub fn except<'a>(mut self, addresses: impl IntoIterator<Item = &'a str>) -> Self {
        self.except
            .extend(addresses.into_iter().map(str::to_lowercase));
        self.addresses.retain(|a| !self.except.contains(a));
        self
    }

    /// Adds the addresses and names of one JSON document, however deep they are, and of the
    /// JSON documents its strings hold.
    pub fn add_json(&mut self, value: &serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    if let (true, Some(name)) = (NAME_KEYS.contains(&key.as_str()), v.as_str()) {
                        let name = name.trim();
                        if !name.is_empty() {
                            self.names.insert(name.to_owned());
                        }
                    }
                    self.add_json(v);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.add_json(v)),
            serde_json::Value::String(s) => {
                // A document carried as text (a webhook's body inside its Lambda request).
                if s.trim_start().starts_with(['{', '['])
                    && let Ok(inner) = serde_json::from_str::<serde_json::Value>(s)
                {
                    self.add_json(&inner);
                }
                for word in s.split(|c: char| c.is_whitespace() || "<>,;\"'()[]".contains(c)) {
                    if looks_like_an_address(word) {
                        let address = word.to_lowercase();
                        if !self.except.contains(&address) {
                            self.addresses.insert(address);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds the addresses and names of a JSON document, or of every line of JSON lines (a line
    /// that is not JSON is skipped: the hostile inputs of a test may not be).
    pub fn add_text(&mut self, text: &str) {
        if let Ok(value) = serde_json::from_str(text) {
            self.add_json(&value);
            return;
        }
        for line in text.lines() {
            if let Ok(value) = serde_json::from_str(line) {
                self.add_json(&value);
            }
        }
    }

    /// The addresses collected (lower-case).
    pub fn addresses(&self) -> &BTreeSet<String> {
        &self.addresses
    }

    /// The names collected.
    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// Every address and name of these inputs that occurs in `text`, one per line and needle,
    /// in line order. One pass over the text per kind (an Aho-Corasick automaton of every
    /// needle): a captured trace-level log runs to hundreds of megabytes.
    pub fn find_in(&self, text: &str) -> Vec<Found> {
        let mut hits: BTreeSet<(usize, &str)> = BTreeSet::new();
        // Addresses, case-insensitively: in the lower-cased text (`to_lowercase` keeps the
        // line breaks, so its lines are the text's lines).
        let addresses: Vec<(String, &str)> = self
            .addresses
            .iter()
            .flat_map(|a| [(a.clone(), a.as_str()), (a.replace('@', "%40"), a.as_str())])
            .collect();
        let lower = text.to_lowercase();
        let lower_lines = LineStarts::new(&lower);
        for m in automaton(addresses.iter().map(|(p, _)| p)).find_overlapping_iter(&lower) {
            hits.insert((
                lower_lines.line_of(m.start()),
                addresses[m.pattern().as_usize()].1,
            ));
        }
        // Names, as whole words in their own case.
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let lines = LineStarts::new(text);
        for m in automaton(&names).find_overlapping_iter(text) {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            if !before.is_some_and(char::is_alphanumeric)
                && !after.is_some_and(char::is_alphanumeric)
            {
                hits.insert((lines.line_of(m.start()), names[m.pattern().as_usize()]));
            }
        }
        let text_lines: Vec<&str> = text.lines().collect();
        hits.into_iter()
            .map(|(line, needle)| Found {
                needle: needle.to_owned(),
                line: line + 1,
                text: text_lines.get(line).copied().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// Panics, listing what was found (at most 20), when `text` (named `what`) holds an
    /// address or a name of these inputs; also when there is nothing to look for, since a scan
    /// for nothing proves nothing.
    pub fn assert_absent(&self, what: &str, text: &str) {
        assert!(
            !self.addresses.is_empty() && !self.names.is_empty(),
            "{what}: the inputs gave no address or no name to look for"
        );
        let found = self.find_in(text);
        if found.is_empty() {
            return;
        }
        let listed: Vec<String> = found
            .iter()
            .take(20)
            .map(|f| format!("  line {}: {:?} in {}", f.line, f.needle, f.text))
            .collect();
        panic!(
            "{what}: {} customer address(es) or name(s) in {} line(s) of {}:\n{}",
            found.len(),
            found.iter().map(|f| f.line).collect::<BTreeSet<_>>().len(),
            text.lines().count(),
            listed.join("\n")
        );
    }
}

/// An automaton finding every occurrence of `patterns`, overlapping ones included.
fn automaton<I, P>(patterns: I) -> AhoCorasick
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    AhoCorasick::new(patterns).expect("a few thousand needles fit an automaton")
}

/// Where each line of a text starts, to name the line of a byte offset.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineStarts(starts)
    }

    /// The 0-based line of byte `at`.
    fn line_of(&self, at: usize) -> usize {
        self.0.partition_point(|&start| start <= at) - 1
    }
}

/// Whether `word` is `local@domain.tld` with a non-empty local part.
fn looks_like_an_address(word: &str) -> bool {
    let Some((local, domain)) = word.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CustomerData {
        let mut data = CustomerData::new();
        data.add_text(concat!(
            r#"{"detail": {"customer": {"id": "c-1", "email": "Ayse.Yilmaz@Example.com", "first_name": "Ayşe", "last_name": "Yılmaz"}}}"#,
            "\n",
            r#"{"mail": {"source": "hello@shop.example.com", "destination": ["Can Kaya <can@example.org>"]}, "billing_address": {"firstName": "Can"}}"#,
            "\nnot json\n"
        ));
        data.except(["hello@shop.example.com"])
    }

    #[test]
    fn addresses_and_names_are_collected_from_any_depth_and_the_sender_is_not() {
        let data = sample();
        let addresses: Vec<&str> = data.addresses().iter().map(String::as_str).collect();
        assert_eq!(addresses, ["ayse.yilmaz@example.com", "can@example.org"]);
        let names: Vec<&str> = data.names().iter().map(String::as_str).collect();
        assert_eq!(names, ["Ayşe", "Can", "Yılmaz"]);
    }

    #[test]
    fn a_document_carried_as_text_is_read_too() {
        let mut data = CustomerData::new();
        let body = r#"{"email": "ayse@example.com", "first_name": "Ayşe"}"#;
        data.add_json(&serde_json::json!({"body": body, "note": "{not json"}));
        let addresses: Vec<&str> = data.addresses().iter().map(String::as_str).collect();
        assert_eq!(addresses, ["ayse@example.com"]);
        let names: Vec<&str> = data.names().iter().map(String::as_str).collect();
        assert_eq!(names, ["Ayşe"]);
    }

    #[test]
    fn an_address_is_found_in_any_case_or_percent_encoded_and_a_name_as_a_word() {
        let data = sample();
        let log = "ok c-1 sent\n\
                   {\"to\":\"AYSE.YILMAZ@EXAMPLE.COM\"}\n\
                   url=https://u.example.com/?c=can%40example.org\n\
                   Dear Ayşe,\n\
                   Canada and Yılmazlar and Scan are other words\n\
                   from hello@shop.example.com\n\
                   (Yılmaz)";
        let lines: Vec<usize> = data.find_in(log).iter().map(|f| f.line).collect();
        assert_eq!(lines, [2, 3, 4, 7]);
        let needles: Vec<String> = data.find_in(log).into_iter().map(|f| f.needle).collect();
        assert_eq!(
            needles,
            [
                "ayse.yilmaz@example.com",
                "can@example.org",
                "Ayşe",
                "Yılmaz"
            ]
        );
    }

    #[test]
    fn lines_are_named_right_after_text_whose_lower_case_is_longer_and_each_hit_once() {
        let data = sample();
        // 'İ' and 'Ⱥ' lower-case to more bytes than they have: the lines still match.
        let log = "İİİ ȺȺ\n\
                   Can wrote to CAN@example.org and can@example.org\n\
                   plain";
        let found: Vec<(usize, String)> = data
            .find_in(log)
            .into_iter()
            .map(|f| (f.line, f.needle))
            .collect();
        assert_eq!(
            found,
            [(2, "Can".to_owned()), (2, "can@example.org".to_owned())]
        );
        assert_eq!(data.find_in(log)[0].text, log.lines().nth(1).unwrap());
    }

    #[test]
    #[should_panic(expected = "1 customer address(es) or name(s) in 1 line(s) of 2")]
    fn assert_absent_fails_on_a_leak() {
        sample().assert_absent("log", "fine\nto can@example.org");
    }

    #[test]
    #[should_panic(expected = "gave no address or no name")]
    fn a_scan_for_nothing_fails() {
        CustomerData::new().assert_absent("log", "anything");
    }

    #[test]
    fn a_clean_log_passes() {
        sample().assert_absent("log", "customer=c-1 key=run.step\nguest:0a1b2c3d4e");
    }
}
