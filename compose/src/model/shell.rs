//! Splitting a compose `command:` / `entrypoint:` string into words as a POSIX shell would.
//!
//! # Guarantees
//! - Words split on unquoted blanks (space, tab, newline); single quotes keep everything
//!   literal; double quotes keep everything but `\` before `$`, `` ` ``, `"`, `\` or a
//!   newline; an unquoted `\` escapes the next character and `\` + newline joins lines.
//! - `''` and `""` make an empty word.
//!
//! # Caveats
//! - No expansion of any kind (`$VAR`, globs, `~`) and no operators: `a && b` is the three
//!   words `a`, `&&`, `b`, as compose's own splitter (go-shellwords in its default mode)
//!   gives them. Images that need a shell write `sh -c "..."`.

/// Splits `s` into words; the error names an unterminated quote.
pub(super) fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => {
                    in_word = true;
                    word.push('\\');
                }
            },
            c => {
                in_word = true;
                word.push(c);
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

    #[test]
    fn splits() {
        let cases: [(&str, &[&str]); 12] = [
            ("", &[]),
            ("  a  b\tc\n", &["a", "b", "c"]),
            (
                "celery -A app worker --loglevel=INFO",
                &["celery", "-A", "app", "worker", "--loglevel=INFO"],
            ),
            ("sh -c 'echo $HOME && ls'", &["sh", "-c", "echo $HOME && ls"]),
            (
                r#"sh -c "echo \"hi\" \$x \n""#,
                &["sh", "-c", r#"echo "hi" $x \n"#],
            ),
            ("a''b \"\" ''", &["ab", "", ""]),
            (r"a\ b c\\d", &["a b", r"c\d"]),
            ("a \\\nb", &["a", "b"]),
            ("x='1 2'y", &["x=1 2y"]),
            ("--opt=\"a b\"", &["--opt=a b"]),
            ("'it''s'", &["its"]),
            ("end\\", &["end\\"]),
        ];
        for (input, want) in cases {
            assert_eq!(split(input).unwrap(), want, "{input:?}");
        }
        assert!(split("'open").is_err());
        assert!(split("\"open").is_err());
    }
}
