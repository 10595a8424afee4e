//! `matches` patterns: the part of regular-expression syntax that PostgreSQL's `~` (under the C collation, as
//! `to_sql` writes it) and Rust's `regex` crate read the same way. A pattern outside it is refused at save
//! time rather than answered two ways: `\b` is a word boundary in one and a backspace in the other, `(?P<x>…)`
//! and `\p{Lu}` exist in one only, `\w` is Unicode in one and ASCII in the other.
//!
//! The subset: literal characters; `.` (any character, newline included); `^` and `$` (start and end of the
//! text); `\d \D \s \S \w \W` (ASCII classes); `\n \t \r \f \v`; a backslash before ASCII punctuation; bracket
//! expressions `[...]` / `[^...]` with characters, ranges, `\d \s \w`, escaped punctuation and the POSIX
//! classes `[:alpha:]` etc. (ASCII); groups `(...)` and `(?:...)`; `|`; quantifiers `* + ? {m} {m,} {m,n}`
//! (at most 255), each optionally lazy (`?`).

/// Repetition counts above this are refused by PostgreSQL (its DUPMAX).
const MAX_REPEAT: u32 = 255;

const POSIX_CLASSES: [&str; 12] = [
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

/// Checks `pattern` against the common subset and returns the same pattern spelled for the `regex` crate
/// (ASCII classes made explicit). The error says what is outside the subset and where.
pub fn translate(pattern: &str) -> Result<String, String> {
    let mut p = Parser {
        chars: pattern.chars().collect(),
        at: 0,
        out: String::with_capacity(pattern.len() + 8),
    };
    p.alternation(0)?;
    if p.at < p.chars.len() {
        return Err(p.unexpected());
    }
    Ok(p.out)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    out: String,
}

/// What the last piece of a sequence was, to know whether a quantifier may follow it.
#[derive(PartialEq)]
enum Piece {
    None,
    Anchor,
    Atom,
    Quantified,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn unexpected(&self) -> String {
        match self.peek() {
            Some(c) => format!("unexpected \"{c}\" at character {}", self.at + 1),
            None => "unexpected end of pattern".into(),
        }
    }

    fn alternation(&mut self, depth: usize) -> Result<(), String> {
        if depth > 32 {
            return Err("groups nest deeper than 32 levels".into());
        }
        loop {
            let empty = self.sequence(depth)?;
            // an empty branch ("a|", "()") is read differently by the engines' versions: refuse it (the
            // empty pattern, which matches everything in both, is fine)
            if empty && !self.chars.is_empty() {
                return Err(format!(
                    "empty alternative or group at character {}",
                    self.at + 1
                ));
            }
            if self.peek() == Some('|') {
                self.at += 1;
                self.out.push('|');
            } else {
                return Ok(());
            }
        }
    }

    /// Parses pieces up to `|`, `)` or the end; returns whether there were none.
    fn sequence(&mut self, depth: usize) -> Result<bool, String> {
        let mut last = Piece::None;
        let mut any = false;
        while let Some(c) = self.peek() {
            match c {
                '|' | ')' => break,
                '*' | '+' | '?' | '{' => {
                    if last != Piece::Atom {
                        return Err(format!(
                            "quantifier \"{c}\" at character {} does not follow a character, class or group",
                            self.at + 1
                        ));
                    }
                    self.quantifier()?;
                    last = Piece::Quantified;
                }
                _ => {
                    last = self.atom(depth)?;
                }
            }
            any = true;
        }
        Ok(!any)
    }

    fn quantifier(&mut self) -> Result<(), String> {
        let c = self.chars[self.at];
        self.at += 1;
        if c == '{' {
            let start = self.at;
            let lo = self.number()?;
            let mut text = lo.to_string();
            if self.peek() == Some(',') {
                self.at += 1;
                text.push(',');
                if self.peek() != Some('}') {
                    let hi = self.number()?;
                    if hi < lo {
                        return Err(format!(
                            "repetition {{{lo},{hi}}} at character {start} has its bounds reversed"
                        ));
                    }
                    text.push_str(&hi.to_string());
                }
            }
            if self.peek() != Some('}') {
                return Err(format!("unclosed repetition at character {start}"));
            }
            self.at += 1;
            self.out.push('{');
            self.out.push_str(&text);
            self.out.push('}');
        } else {
            self.out.push(c);
        }
        if self.peek() == Some('?') {
            self.at += 1;
            self.out.push('?');
        }
        Ok(())
    }

    fn number(&mut self) -> Result<u32, String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        match digits.parse::<u32>() {
            Ok(n) if n <= MAX_REPEAT => Ok(n),
            Ok(_) | Err(_) if !digits.is_empty() => Err(format!(
                "repetition count {digits} at character {} is above {MAX_REPEAT}",
                start + 1
            )),
            _ => Err(format!(
                "a repetition {{m,n}} needs numbers at character {}",
                start + 1
            )),
        }
    }

    fn atom(&mut self, depth: usize) -> Result<Piece, String> {
        let c = self.chars[self.at];
        self.at += 1;
        match c {
            '^' | '$' => {
                self.out.push(c);
                Ok(Piece::Anchor)
            }
            '.' => {
                self.out.push('.');
                Ok(Piece::Atom)
            }
            '(' => {
                self.out.push('(');
                if self.peek() == Some('?') {
                    if self.chars.get(self.at + 1) != Some(&':') {
                        return Err(format!(
                            "\"(?\" at character {}: only the non-capturing group \"(?:...)\" is supported (no flags, named groups or lookaround)",
                            self.at
                        ));
                    }
                    self.at += 2;
                    self.out.push_str("?:");
                }
                self.alternation(depth + 1)?;
                if self.peek() != Some(')') {
                    return Err(format!("unclosed group: {}", self.unexpected()));
                }
                self.at += 1;
                self.out.push(')');
                Ok(Piece::Atom)
            }
            '[' => {
                self.bracket()?;
                Ok(Piece::Atom)
            }
            '\\' => {
                let class = self.escape(false)?;
                self.out.push_str(&class);
                Ok(Piece::Atom)
            }
            ']' | '}' => Err(format!(
                "\"{c}\" at character {} must be escaped as \"\\{c}\"",
                self.at
            )),
            _ => {
                push_literal(&mut self.out, c);
                Ok(Piece::Atom)
            }
        }
    }

    /// A backslash escape (the backslash already read), as Rust pattern text; `in_class` for inside `[...]`.
    fn escape(&mut self, in_class: bool) -> Result<String, String> {
        let Some(c) = self.peek() else {
            return Err("pattern ends with a backslash".into());
        };
        self.at += 1;
        let set = |chars: &str, negated: bool| {
            if in_class {
                chars.to_string()
            } else if negated {
                format!("[^{chars}]")
            } else {
                format!("[{chars}]")
            }
        };
        Ok(match c {
            'd' => set("0-9", false),
            'w' => set("0-9A-Za-z_", false),
            's' => set("\\t\\n\\x0B\\x0C\\r ", false),
            'D' | 'W' | 'S' if in_class => {
                return Err(format!(
                    "\"\\{c}\" at character {} cannot be used inside brackets",
                    self.at - 1
                ))
            }
            'D' => set("0-9", true),
            'W' => set("0-9A-Za-z_", true),
            'S' => set("\\t\\n\\x0B\\x0C\\r ", true),
            'n' | 't' | 'r' | 'f' | 'v' => format!("\\{c}"),
            // the character itself, escaped again only where Rust needs it (it refuses "\\<", for one)
            _ if c.is_ascii_punctuation() => {
                let mut text = String::new();
                push_literal(&mut text, c);
                text
            }
            _ => {
                return Err(format!(
                    "\"\\{c}\" at character {} reads differently in PostgreSQL and Rust (or exists in one only)",
                    self.at - 1
                ))
            }
        })
    }

    fn bracket(&mut self) -> Result<(), String> {
        let open = self.at;
        self.out.push('[');
        if self.peek() == Some('^') {
            self.at += 1;
            self.out.push('^');
        }
        let mut first = true;
        let mut prev: Option<char> = None; // the last single character, which may start a range
        loop {
            let Some(c) = self.peek() else {
                return Err(format!("unclosed bracket expression at character {open}"));
            };
            self.at += 1;
            match c {
                ']' if !first => break,
                '[' => {
                    if self.peek() != Some(':') {
                        return Err(format!(
                            "\"[\" inside brackets at character {} must be escaped (only [:class:] is supported)",
                            self.at
                        ));
                    }
                    let rest: String = self.chars[self.at + 1..].iter().collect();
                    let name = rest.split(":]").next().unwrap_or_default();
                    if !rest.contains(":]") || !POSIX_CLASSES.contains(&name) {
                        return Err(format!(
                            "unknown character class at character {}: the classes are [:{}:]",
                            self.at,
                            POSIX_CLASSES.join(":], [:")
                        ));
                    }
                    self.at += 1 + name.len() + 2;
                    self.out.push_str(&format!("[:{name}:]"));
                    prev = None;
                }
                '\\' => {
                    let text = self.escape(true)?;
                    self.out.push_str(&text);
                    // an escaped single character may start a range, a class may not
                    prev = match text.chars().collect::<Vec<_>>()[..] {
                        ['\\', ch] | [ch] if ch.is_ascii_punctuation() => Some(ch),
                        _ => None,
                    };
                }
                '-' if !first && self.peek() != Some(']') => {
                    let Some(lo) = prev.take() else {
                        return Err(format!(
                            "\"-\" at character {} does not follow a single character: write \"\\-\" for a hyphen",
                            self.at
                        ));
                    };
                    let hi = match self.peek() {
                        Some('\\') | Some('[') | None => {
                            return Err(format!(
                                "a range at character {} must end in a plain character",
                                self.at
                            ))
                        }
                        Some(hi) => hi,
                    };
                    self.at += 1;
                    if hi < lo {
                        return Err(format!(
                            "range {lo}-{hi} at character {} is out of order",
                            self.at - 2
                        ));
                    }
                    self.out.push('-');
                    push_literal(&mut self.out, hi);
                }
                // Rust's class set operations; a plain character elsewhere
                '&' | '~' if self.peek() == Some(c) => {
                    return Err(format!(
                        "\"{c}{c}\" inside brackets at character {} must be escaped",
                        self.at
                    ))
                }
                '-' if self.peek() == Some('-') => {
                    return Err(format!(
                        "\"--\" inside brackets at character {} must be escaped",
                        self.at
                    ))
                }
                _ => {
                    push_literal(&mut self.out, c);
                    prev = Some(c);
                }
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
}

/// A literal character, escaped where Rust's syntax would read it otherwise.
fn push_literal(out: &mut String, c: char) {
    if regex_syntax_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
            | ' '
    )
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn the_common_subset_is_kept() {
        for (pg, rust) in [
            ("^H.*e$", "^H.*e$"),
            ("a\\d+", "a[0-9]+"),
            ("[\\w-]", "[0-9A-Za-z_\\-]"),
            ("x{2,3}?", "x{2,3}?"),
            ("(?:ab|cd)+", "(?:ab|cd)+"),
            ("[[:alpha:]]", "[[:alpha:]]"),
            ("[^a-z]", "[^a-z]"),
            ("a\\.b", "a\\.b"),
            ("a b#", "a\\ b\\#"),
            ("", ""),
        ] {
            assert_eq!(translate(pg).as_deref(), Ok(rust), "{pg}");
            regex::Regex::new(rust).unwrap();
        }
    }

    #[test]
    fn every_escaped_punctuation_and_literal_builds() {
        for c in (0x20u8..0x7f).map(char::from) {
            for pattern in [
                format!("\\{c}"),
                format!("[\\{c}]"),
                format!("[{c}]"),
                c.to_string(),
            ] {
                if let Ok(rust) = translate(&pattern) {
                    regex::Regex::new(&rust).unwrap_or_else(|e| panic!("{pattern} -> {rust}: {e}"));
                }
            }
        }
    }

    #[test]
    fn dialect_differences_are_refused() {
        for bad in [
            "\\bword\\b",
            "\\B",
            "(?P<x>a)",
            "(?i)a",
            "\\p{Lu}",
            "\\x41",
            "a{256}",
            "a**",
            "*a",
            "^*",
            "a|",
            "()",
            "[a-]b]x",
            "[[.a.]]",
            "[a&&b]",
            "(a",
            "a)",
            "\\1",
            "[\\D]",
            "a\\",
            "[z-a]",
        ] {
            assert!(translate(bad).is_err(), "{bad} should be refused");
        }
    }
}
