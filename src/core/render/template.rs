//! A deliberately tiny template language for the files in `templates/` and `compose/`: `{{name}}`
//! is replaced by a value, and a template naming a variable nobody provided is an error, never an
//! empty string. No logic lives in templates; choices are made in Rust.

use std::collections::BTreeMap;

/// Renders `template` (called `name` in errors) with `vars`.
pub fn render(name: &str, template: &str, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{name}: unclosed `{{{{`"))?;
        let var = after[..end].trim();
        let value = vars
            .get(var)
            .ok_or_else(|| format!("{name}: undefined template variable `{var}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_and_refuses_undefined_variables() {
        let vars = BTreeMap::from([("domain", "movim.example.org".to_owned())]);
        assert_eq!(
            render("t", "host {{ domain }}!", &vars),
            Ok("host movim.example.org!".into())
        );
        assert_eq!(
            render("t", "{{nope}}", &vars),
            Err("t: undefined template variable `nope`".into())
        );
        assert!(render("t", "{{domain", &vars).is_err());
    }
}
