//! The little of sh(1) that procmail's rc files use: variables and `$NAME`
//! expansion, and splitting a line into words with quotes.
//!
//! In: a line's text and the variables. Out: expanded text, or words.
//! Must not: run anything. Command substitution (backquotes) is an error the
//! caller reports: the sandbox cannot run programs.

use std::collections::HashMap;

/// The rc files' variables (procmail's environment).
pub type Vars = HashMap<String, String>;

/// A variable's value; unset is empty, as in sh.
pub fn get<'v>(vars: &'v Vars, name: &str) -> &'v str {
    vars.get(name).map_or("", String::as_str)
}

/// Whether `c` may start a variable name.
fn name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Whether `c` may continue a variable name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `name` is a variable name (`NAME=value` assigns it).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(name_start) && chars.all(name_char)
}

/// Expands the `$` reference at `chars[at]` (the `$` itself): its value
/// and the index after it. A `$` that starts no reference is itself.
fn reference(chars: &[char], at: usize, vars: &Vars) -> (String, usize) {
    let start = at + 1;
    match chars.get(start) {
        Some(&c) if name_start(c) => {
            let end = chars[start..]
                .iter()
                .position(|&c| !name_char(c))
                .map_or(chars.len(), |n| start + n);
            let name: String = chars[start..end].iter().collect();
            (get(vars, &name).to_owned(), end)
        }
        Some(&c) if c.is_ascii_digit() => (get(vars, &c.to_string()).to_owned(), start + 1),
        // procmail's special parameters: no program ever ran.
        Some('?') => ("0".to_owned(), start + 1),
        Some('$' | '#' | '=' | '_' | '-') => (String::new(), start + 1),
        Some('{') => {
            let Some(len) = chars[start + 1..].iter().position(|&c| c == '}') else {
                return ("$".to_owned(), start);
            };
            let inner: String = chars[start + 1..start + 1 + len].iter().collect();
            let end = start + len + 2;
            let (name, default) = match inner.find([':', '-', '+']) {
                Some(i) => (&inner[..i], Some(&inner[i..])),
                None => (inner.as_str(), None),
            };
            let value = get(vars, name);
            let value = match default {
                // `${N:-word}`: word if unset or empty; `${N-word}`: if unset.
                Some(op) if op.starts_with(":-") => {
                    if value.is_empty() {
                        expand(&op[2..], vars)
                    } else {
                        value.to_owned()
                    }
                }
                Some(op) if op.starts_with('-') => {
                    if vars.contains_key(name) {
                        value.to_owned()
                    } else {
                        expand(&op[1..], vars)
                    }
                }
                // `${N:+word}`: word if set and not empty; `${N+word}`: if set.
                Some(op) if op.starts_with(":+") => {
                    if value.is_empty() {
                        String::new()
                    } else {
                        expand(&op[2..], vars)
                    }
                }
                Some(op) if op.starts_with('+') => {
                    if vars.contains_key(name) {
                        expand(&op[1..], vars)
                    } else {
                        String::new()
                    }
                }
                _ => value.to_owned(),
            };
            (value, end)
        }
        _ => ("$".to_owned(), start),
    }
}

/// Expands every `$NAME`, `${NAME}` and `$1` in `text`, quotes untouched.
pub fn expand(text: &str, vars: &Vars) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '$' {
            let (value, next) = reference(&chars, i, vars);
            out.push_str(&value);
            i = next;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Why a line could not be split into words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WordsError {
    /// A quote without its closing quote.
    Unclosed(char),
    /// A backquote: a program would have to run.
    Command,
}

/// Splits `text` into words as sh does: white space separates, `'...'` is
/// literal, `"..."` keeps spaces and expands, `\` quotes one character, an
/// unquoted `#` at the start of a word starts a comment. With `vars`,
/// `$` references are expanded; without, kept as written.
pub fn words(text: &str, vars: Option<&Vars>) -> Result<Vec<String>, WordsError> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let dollar = |i: usize, word: &mut String| -> usize {
        match vars {
            Some(vars) => {
                let (value, next) = reference(&chars, i, vars);
                word.push_str(&value);
                next
            }
            None => {
                word.push('$');
                i + 1
            }
        }
    };
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                i += 1;
            }
            '#' if !in_word => break,
            '`' => return Err(WordsError::Command),
            '\'' => {
                in_word = true;
                let Some(len) = chars[i + 1..].iter().position(|&c| c == '\'') else {
                    return Err(WordsError::Unclosed('\''));
                };
                word.extend(&chars[i + 1..i + 1 + len]);
                i += len + 2;
            }
            '"' => {
                in_word = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(WordsError::Unclosed('"')),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('`') => return Err(WordsError::Command),
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.extend(chars.get(i + 1));
                            i += 2;
                        }
                        Some('$') => i = dollar(i, &mut word),
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.get(i + 1));
                i += 2;
            }
            '$' => {
                in_word = true;
                i = dollar(i, &mut word);
            }
            c => {
                in_word = true;
                word.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [
            ("HOME", "/home/jo"),
            ("MAILDIR", "/home/jo/Maildir"),
            ("1", "lists"),
            ("EMPTY", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn expansion() {
        let v = vars();
        for (text, want) in [
            ("$HOME/Maildir/", "/home/jo/Maildir/"),
            ("${MAILDIR}/.Spam/", "/home/jo/Maildir/.Spam/"),
            ("$MAILDIR/new", "/home/jo/Maildir/new"),
            (".$1/", ".lists/"),
            ("$UNSET.x", ".x"),
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${HOME:+set}", "set"),
            ("$?", "0"),
            ("a$", "a$"),
            ("^Subject: x$", "^Subject: x$"),
            ("${unclosed", "${unclosed"),
        ] {
            assert_eq!(expand(text, &v), want, "{text}");
        }
    }

    #[test]
    fn splitting_into_words() {
        let v = vars();
        let w = |t: &str| words(t, Some(&v));
        assert_eq!(
            w(r#"formail -A "X-Home: $HOME" -I 'X-Lit: $HOME'"#).unwrap(),
            ["formail", "-A", "X-Home: /home/jo", "-I", "X-Lit: $HOME"]
        );
        assert_eq!(w("a\\ b c # comment").unwrap(), ["a b", "c"]);
        assert_eq!(w("a#b").unwrap(), ["a#b"]);
        assert_eq!(w("\"unclosed"), Err(WordsError::Unclosed('"')));
        assert_eq!(w("x `date`"), Err(WordsError::Command));
        assert_eq!(words("$HOME x", None).unwrap(), ["$HOME", "x"]);
        assert!(w("").unwrap().is_empty());
    }

    #[test]
    fn names() {
        assert!(is_name("MAILDIR") && is_name("_x1"));
        assert!(!is_name("1x") && !is_name("") && !is_name("A-B"));
    }
}
