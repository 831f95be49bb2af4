//! Words as a POSIX shell reads them: for every command line this tool shows a user (and the ones
//! the kube manifests hand to `sh -c`), so that what is printed can be pasted as it is.

/// `word` as a POSIX shell reads it back: bare when safe, else single-quoted.
#[must_use]
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@,+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
