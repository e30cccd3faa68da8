//! Kafka principals (`User:name`) and `ssl.principal.mapping.rules` (Kafka's
//! `SslPrincipalMapper`): `DEFAULT` or `RULE:pattern/replacement/[LU]`, tried in order.

use std::fmt;

use regex::Regex;

/// A Kafka principal, `type:name` (`User:ANONYMOUS`, `User:CN=bob,OU=eng`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    text: String,
}

impl Principal {
    /// Kafka's principal of an unauthenticated connection.
    pub(crate) fn anonymous() -> Self {
        Principal::user("ANONYMOUS")
    }

    /// `User:` + `name`.
    pub(crate) fn user(name: &str) -> Self {
        Principal {
            text: format!("User:{name}"),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a rules text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RulesError {
    #[error("invalid rule {rule:?}: expected DEFAULT or RULE:pattern/replacement/[LU]")]
    Syntax { rule: String },
    #[error("invalid pattern in rule {rule:?}: {reason}")]
    Pattern { rule: String, reason: String },
}

#[derive(Debug, Clone)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        /// The Java replacement rewritten in the regex crate's syntax.
        replacement: String,
        case: Case,
    },
}

/// Parsed `ssl.principal.mapping.rules`; the empty text is `DEFAULT`.
#[derive(Debug, Clone)]
pub(crate) struct MappingRules {
    rules: Vec<Rule>,
}

impl MappingRules {
    /// Parses Kafka's syntax: comma-separated rules (commas inside a rule's pattern or
    /// replacement are allowed), each `DEFAULT` or `RULE:pattern/replacement/` with an
    /// optional `L` or `U` after the last slash; `\` escapes a `/` inside a rule.
    pub(crate) fn parse(text: &str) -> Result<Self, RulesError> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (rule, after) = if let Some(after) = rest.strip_prefix("DEFAULT") {
                (Rule::Default, after)
            } else if let Some(body) = rest.strip_prefix("RULE:") {
                parse_rule(body, rest)?
            } else {
                return Err(RulesError::Syntax {
                    rule: first_item(rest),
                });
            };
            rules.push(rule);
            let after = after.trim_start();
            rest = match after.strip_prefix(',') {
                Some(next) => next.trim_start(),
                None if after.is_empty() => after,
                None => {
                    return Err(RulesError::Syntax {
                        rule: first_item(rest),
                    });
                }
            };
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(MappingRules { rules })
    }

    /// The short name of a certificate's subject DN (RFC 2253 form): the first rule that
    /// applies wins; `None` when none does (Kafka then refuses the connection).
    pub(crate) fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_owned()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                // Java's Matcher.matches(): the whole DN must match.
                let whole = pattern
                    .find(dn)
                    .is_some_and(|m| m.start() == 0 && m.end() == dn.len());
                if !whole {
                    return None;
                }
                let replaced = pattern.replace_all(dn, replacement.as_str()).into_owned();
                Some(match case {
                    Case::Keep => replaced,
                    Case::Lower => replaced.to_lowercase(),
                    Case::Upper => replaced.to_uppercase(),
                })
            }
        })
    }
}

/// `RULE:` body: pattern up to an unescaped `/`, replacement up to the next, then `L`/`U`.
fn parse_rule<'a>(body: &'a str, whole: &str) -> Result<(Rule, &'a str), RulesError> {
    let syntax = || RulesError::Syntax {
        rule: first_item(whole),
    };
    let (pattern_text, rest) = split_at_slash(body).ok_or_else(syntax)?;
    let (replacement_text, rest) = split_at_slash(rest).ok_or_else(syntax)?;
    let (case, rest) = match rest.as_bytes().first() {
        Some(b'L') => (Case::Lower, &rest[1..]),
        Some(b'U') => (Case::Upper, &rest[1..]),
        _ => (Case::Keep, rest),
    };
    // Java anchors nothing for `matches()` but the whole input; anchoring here keeps the
    // same meaning for the full-match check above.
    let pattern = Regex::new(pattern_text).map_err(|error| RulesError::Pattern {
        rule: first_item(whole),
        reason: error.to_string(),
    })?;
    let replacement = java_replacement(replacement_text, pattern.captures_len() - 1);
    Ok((
        Rule::Replace {
            pattern,
            replacement,
            case,
        },
        rest,
    ))
}

/// Splits at the first `/` not escaped by `\`; the part before keeps its escapes.
fn split_at_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&text[..at], &text[at + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// Java's replacement syntax (`$1`, `${name}`, `\x` for a literal x) in the regex crate's
/// (`${1}`, `${name}`, `$$`); `$n` with no such group is literal, as Kafka escapes it.
fn java_replacement(text: &str, groups: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') | None => out.push_str("$$"),
                Some(other) => out.push(other),
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut number = String::new();
                while let Some(digit) = chars.peek().copied().filter(char::is_ascii_digit) {
                    let longer = format!("{number}{digit}");
                    if longer.parse::<usize>().is_ok_and(|n| n <= groups) {
                        number = longer;
                        chars.next();
                    } else {
                        break;
                    }
                }
                if number.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{number}}}"));
                }
            }
            '$' if chars.peek() == Some(&'{') => out.push('$'),
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// The text up to the next comma, to name a bad rule in an error.
fn first_item(text: &str) -> String {
    text.split(',').next().unwrap_or(text).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's documented example (ssl.principal.mapping.rules in the broker configs).
    const DOCUMENTED: &str = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
        RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
        RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
        DEFAULT";

    #[track_caller]
    fn check(rules: &str, dn: &str, expected: Option<&str>) {
        let rules = MappingRules::parse(rules).unwrap();
        assert_eq!(rules.map(dn).as_deref(), expected, "{dn}");
    }

    #[test]
    fn mapping_rules_map_as_kafka_documents() {
        let table = [
            (
                "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
                "serviceuser",
            ),
            (
                "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
                "adminuser@admin",
            ),
            ("OU=JavaSoft,cn=Duke.Two,O=Sun", "duke.two"),
            (
                "OU=JavaSoft,O=Sun Microsystems,C=US",
                "OU=JavaSoft,O=Sun Microsystems,C=US",
            ),
        ];
        for (dn, expected) in table {
            check(DOCUMENTED, dn, Some(expected));
        }
    }

    #[test]
    fn mapping_rules_cases_and_fallthrough() {
        let table: [(&str, &str, Option<&str>); 8] = [
            ("DEFAULT", "CN=bob,OU=eng", Some("CN=bob,OU=eng")),
            ("", "CN=bob,OU=eng", Some("CN=bob,OU=eng")),
            (
                "RULE:^CN=(.*?),OU=(.*)$/$2-$1/U",
                "CN=bob,OU=eng",
                Some("ENG-BOB"),
            ),
            // No rule applies and no DEFAULT: Kafka refuses the principal.
            ("RULE:^CN=admin$/root/", "CN=bob", None),
            ("RULE:^CN=admin$/root/, DEFAULT", "CN=bob", Some("CN=bob")),
            // Only a whole match counts (Java's Matcher.matches()).
            ("RULE:CN=(b)/$1/", "CN=bob", None),
            // `$1x` is group 1 then `x`; `\$` is a literal dollar; `$9` without group 9 too.
            ("RULE:^CN=(.*)$/$1x\\$$9/", "CN=bob", Some("bobx$$9")),
            // A comma inside a pattern does not split the rules.
            (
                "RULE:^CN=([^,]*),OU=eng$/$1/L,DEFAULT",
                "CN=Bob,OU=eng",
                Some("bob"),
            ),
        ];
        for (rules, dn, expected) in table {
            check(rules, dn, expected);
        }
    }

    #[test]
    fn mapping_rules_refuse_bad_syntax() {
        for bad in [
            "RULE:^CN=(.*)$",
            "RULE:^CN=(.*)$/$1",
            "NOPE",
            "DEFAULT DEFAULT",
            "RULE:^CN=(.*$/$1/",
            "RULE:^CN=(.*)$/$1/X",
        ] {
            assert!(MappingRules::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn principals_print_as_kafka_writes_them() {
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
        assert_eq!(
            Principal::user("CN=bob,OU=eng").to_string(),
            "User:CN=bob,OU=eng"
        );
    }
}
