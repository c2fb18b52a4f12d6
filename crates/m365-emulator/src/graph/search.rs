//! `$search` on directory objects, after <https://learn.microsoft.com/graph/search-query-parameter>
//! and <https://learn.microsoft.com/graph/aad-advanced-queries>.
//!
//! Syntax: `"clause" [AND | OR] "clause"`, any number of clauses, parentheses for precedence
//! (AND binds tighter than OR), each clause `"property:text"` inside double quotes (`\"` and
//! `\\` escape), the operators in upper case outside the quotes. The property is required.
//!
//! Matching: `displayName` (and `description`, which users do not have) is tokenised search:
//! both the value and the text are split into words at spaces, at a change from lower to upper
//! case, between letters and digits, and around symbols (a word joined by symbols also yields
//! its symbol-free concatenation: `hello.world` gives `hello`, `.`, `world`, `helloworld`).
//! Every word of the text must be a prefix of some word of the value, in any order, ignoring
//! case. Every other property behaves as `startsWith` on the whole value, ignoring case, as
//! Microsoft documents.

/// A parsed `$search` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchExpr {
    /// `"property:text"` with the property in its canonical spelling.
    Clause {
        property: &'static str,
        text: String,
    },
    And(Box<SearchExpr>, Box<SearchExpr>),
    Or(Box<SearchExpr>, Box<SearchExpr>),
}

/// Why a `$search` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchError {
    /// Not the documented syntax; the message says where.
    Syntax(String),
    /// The clause names a property that cannot be searched.
    UnknownProperty(String),
}

/// Properties searched word by word rather than with `startsWith`.
const TOKENISED: &[&str] = &["displayName", "description"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lexeme {
    Quoted(String),
    And,
    Or,
    Open,
    Close,
}

fn syntax(raw: &str, position: usize, what: &str) -> SearchError {
    SearchError::Syntax(format!("Syntax error: {what} at position {position} in '{raw}'."))
}

fn lex(raw: &str) -> Result<Vec<(usize, Lexeme)>, SearchError> {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((i, Lexeme::Open));
                i += 1;
            }
            ')' => {
                out.push((i, Lexeme::Close));
                i += 1;
            }
            '"' => {
                let start = i;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax(raw, start, "unterminated quoted clause")),
                        Some('"') => break,
                        Some('\\') => match chars.get(i + 1) {
                            Some(&e @ ('"' | '\\')) => {
                                text.push(e);
                                i += 1;
                            }
                            _ => return Err(syntax(raw, i, "invalid escape sequence")),
                        },
                        Some(&other) => text.push(other),
                    }
                    i += 1;
                }
                out.push((start, Lexeme::Quoted(text)));
                i += 1;
            }
            _ => {
                let start = i;
                let word: String =
                    chars[i..].iter().take_while(|c| c.is_ascii_alphabetic()).collect();
                match word.as_str() {
                    "AND" => out.push((start, Lexeme::And)),
                    "OR" => out.push((start, Lexeme::Or)),
                    _ => {
                        return Err(syntax(raw, start, &format!("character '{c}' is not valid")));
                    }
                }
                i += word.chars().count();
            }
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct Parser<'a> {
    raw: &'a str,
    lexemes: Vec<(usize, Lexeme)>,
    next: usize,
    properties: &'a [&'static str],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Lexeme> {
        self.lexemes.get(self.next).map(|(_, l)| l)
    }

    fn position(&self) -> usize {
        self.lexemes.get(self.next).map_or(self.raw.chars().count(), |(p, _)| *p)
    }

    fn or(&mut self) -> Result<SearchExpr, SearchError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Lexeme::Or) {
            self.next += 1;
            left = SearchExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<SearchExpr, SearchError> {
        let mut left = self.primary()?;
        while self.peek() == Some(&Lexeme::And) {
            self.next += 1;
            left = SearchExpr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<SearchExpr, SearchError> {
        let position = self.position();
        match self.lexemes.get(self.next).map(|(_, l)| l.clone()) {
            Some(Lexeme::Open) => {
                self.next += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Lexeme::Close) {
                    return Err(syntax(self.raw, self.position(), "')' expected"));
                }
                self.next += 1;
                Ok(inner)
            }
            Some(Lexeme::Quoted(clause)) => {
                self.next += 1;
                let Some((property, text)) = clause.split_once(':') else {
                    return Err(syntax(self.raw, position, "a clause must be \"property:text\""));
                };
                let property = property.trim();
                let canonical = self
                    .properties
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(property))
                    .copied()
                    .ok_or_else(|| SearchError::UnknownProperty(property.to_owned()))?;
                Ok(SearchExpr::Clause { property: canonical, text: text.to_owned() })
            }
            _ => Err(syntax(self.raw, position, "a quoted clause or '(' expected")),
        }
    }
}

/// Parses a `$search` value (already URL-decoded); `properties` are the searchable ones.
pub(crate) fn parse(raw: &str, properties: &[&'static str]) -> Result<SearchExpr, SearchError> {
    let lexemes = lex(raw)?;
    let mut parser = Parser { raw, lexemes, next: 0, properties };
    let expr = parser.or()?;
    if parser.next < parser.lexemes.len() {
        return Err(syntax(raw, parser.position(), "AND or OR expected"));
    }
    Ok(expr)
}

impl SearchExpr {
    /// Whether an object matches; `value_of` gives a property's value (`None` for null).
    pub(crate) fn matches(&self, value_of: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            SearchExpr::And(a, b) => a.matches(value_of) && b.matches(value_of),
            SearchExpr::Or(a, b) => a.matches(value_of) || b.matches(value_of),
            SearchExpr::Clause { property, text } => {
                let Some(value) = value_of(property) else {
                    return false;
                };
                if TOKENISED.contains(property) {
                    tokens_match(&value, text)
                } else {
                    value.to_lowercase().starts_with(&text.to_lowercase())
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharKind {
    Letter,
    Digit,
    Symbol,
}

fn kind(c: char) -> CharKind {
    if c.is_alphabetic() {
        CharKind::Letter
    } else if c.is_numeric() {
        CharKind::Digit
    } else {
        CharKind::Symbol
    }
}

/// Splits `text` into lower-case words as Microsoft's directory search does (see the module
/// documentation). Symbols are words of their own.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let mut parts: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut current_kind = None;
        let mut previous_lower = false;
        let mut had_symbol = false;
        for c in word.chars() {
            let k = kind(c);
            let boundary = current_kind != Some(k)
                || k == CharKind::Symbol
                || (k == CharKind::Letter && previous_lower && c.is_uppercase());
            if boundary && !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            if k == CharKind::Symbol {
                had_symbol = true;
                out.push(c.to_lowercase().collect());
                current_kind = None;
            } else {
                current.push(c);
                current_kind = Some(k);
            }
            previous_lower = c.is_lowercase();
        }
        if !current.is_empty() {
            parts.push(current);
        }
        let parts: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        if had_symbol && parts.len() > 1 {
            out.push(parts.concat());
        }
        out.extend(parts);
    }
    out
}

/// Every word of `text` (symbols aside) is a prefix of some word of `value`.
fn tokens_match(value: &str, text: &str) -> bool {
    let value_tokens = tokenize(value);
    tokenize(text)
        .iter()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .all(|t| value_tokens.iter().any(|v| v.starts_with(t.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROPS: &[&str] = &["displayName", "mail", "givenName"];

    fn user(property: &str) -> Option<String> {
        match property {
            "displayName" => Some("Adele Vance".to_owned()),
            "mail" => Some("AdeleV@contoso.example".to_owned()),
            _ => None,
        }
    }

    fn hit(search: &str) -> bool {
        parse(search, PROPS).expect(search).matches(&user)
    }

    #[test]
    fn tokenisation_follows_the_documented_examples() {
        assert_eq!(tokenize("hello world"), ["hello", "world"]);
        assert_eq!(tokenize("HelloWorld"), ["hello", "world"]);
        assert_eq!(tokenize("helloWORLD"), ["hello", "world"]);
        assert_eq!(tokenize("HELLOworld"), ["helloworld"]);
        assert_eq!(tokenize("HelloWORld"), ["hello", "world"]);
        assert_eq!(tokenize("hello.world"), [".", "helloworld", "hello", "world"]);
        assert_eq!(tokenize("hello123world"), ["hello", "123", "world"]);
        assert_eq!(tokenize("李四(David Li)"), ["(", "李四david", "李四", "david", ")", "li"]);
    }

    #[test]
    fn display_name_is_word_prefix_search_others_are_starts_with() {
        assert!(hit("\"displayName:adele\""));
        assert!(hit("\"displayName:van\""));
        assert!(hit("\"displayName:Vance Ad\""), "any order, prefixes");
        assert!(!hit("\"displayName:dele\""), "no contains");
        assert!(!hit("\"displayName:adele smith\""), "every word must match");
        assert!(hit("\"mail:adelev@\""));
        assert!(!hit("\"mail:contoso\""), "startsWith on the whole value");
        assert!(!hit("\"givenName:a\""), "null never matches");
        let tokenised = |value: &str, text: &str| tokens_match(value, text);
        assert!(tokenised("李四(David Li)", "Li 李"));
        assert!(tokenised("李四(David Li)", "David)"));
        assert!(tokenised("hello-world", "helloworld"));
        assert!(tokenised("Test User 0042", "user 004"));
    }

    #[test]
    fn operators_and_precedence() {
        assert!(hit("\"displayName:x\" OR \"mail:adele\""));
        assert!(!hit("\"displayName:x\" AND \"mail:adele\""));
        // AND binds tighter: x AND y OR adele = (x AND y) OR adele.
        assert!(hit("\"displayName:x\" AND \"mail:y\" OR \"displayName:adele\""));
        assert!(!hit("\"displayName:x\" AND (\"mail:y\" OR \"displayName:adele\")"));
        assert!(hit("\"DISPLAYNAME:ADELE\""), "property names ignore case");
        assert!(hit("\"displayName:a\\\"b\" OR \"displayName:adele\""), "escaped quote");
    }

    #[test]
    fn malformed_searches_are_rejected() {
        for bad in [
            "displayName:adele",
            "\"adele\"",
            "\"displayName:adele",
            "\"displayName:a\" or \"mail:b\"",
            "\"displayName:a\" \"mail:b\"",
            "(\"displayName:a\"",
            "\"displayName:a\" OR",
            "",
        ] {
            assert!(
                matches!(parse(bad, PROPS), Err(SearchError::Syntax(_))),
                "{bad}: {:?}",
                parse(bad, PROPS)
            );
        }
        assert_eq!(
            parse("\"jobTitle:x\"", PROPS),
            Err(SearchError::UnknownProperty("jobTitle".to_owned()))
        );
    }
}
