//! Evaluation of the registry's simple dotted JSON paths against a resource.

use serde_json::Value;

/// One step of a path: a member name and an optional `[key=value]` filter.
struct Segment<'p> {
    /// The JSON member to descend into.
    name: &'p str,
    /// Keep only items whose string member `.0` equals `.1`.
    filter: Option<(&'p str, &'p str)>,
}

/// Splits a path on the dots that are outside `[...]` filters.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                out.push(segment(path.get(start..i).unwrap_or_default()));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(segment(path.get(start..).unwrap_or_default()));
    out
}

/// Parses one segment `name` or `name[key=value]`.
fn segment(text: &str) -> Segment<'_> {
    match text.split_once('[') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix(']').unwrap_or(rest);
            Segment {
                name,
                filter: inner.split_once('='),
            }
        }
        None => Segment {
            name: text,
            filter: None,
        },
    }
}

/// Pushes `v`, or each item of `v` when it is an array.
fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter().filter(|i| !i.is_null())),
        Value::Null => {}
        other => out.push(other),
    }
}

/// Every value reached by `path` from `root`, with arrays flattened at every step.
pub(crate) fn values_at<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![root];
    for seg in segments(path) {
        let mut next = Vec::new();
        for v in current {
            if let Some(child) = v.get(seg.name) {
                push_flat(child, &mut next);
            }
        }
        if let Some((key, wanted)) = seg.filter {
            next.retain(|item| item.get(key).and_then(Value::as_str) == Some(wanted));
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current
}

/// Every value reached by any of `paths`, in path order.
pub(crate) fn values_at_any<'a>(root: &'a Value, paths: &[&str]) -> Vec<&'a Value> {
    paths.iter().flat_map(|p| values_at(root, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_objects_and_arrays() {
        let r = json!({"name": [{"given": ["A", "B"]}, {"given": ["C"]}, {"family": "D"}]});
        let got: Vec<_> = values_at(&r, "name.given").into_iter().cloned().collect();
        assert_eq!(got, vec![json!("A"), json!("B"), json!("C")]);
        assert_eq!(values_at(&r, "name.family"), vec![&json!("D")]);
        assert!(values_at(&r, "name.nothing").is_empty());
        assert!(values_at(&r, "absent.deeper").is_empty());
    }

    #[test]
    fn filters_on_a_member_value_even_when_it_contains_dots() {
        let r = json!({
            "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
            "extension": [{"url": "http://x.org/a.b", "valueDateTime": "2020"},
                          {"url": "http://x.org/other", "valueDateTime": "2021"}]
        });
        let phone = values_at(&r, "telecom[system=phone]");
        assert_eq!(phone, vec![&json!({"system": "phone", "value": "1"})]);
        let ext = values_at(&r, "extension[url=http://x.org/a.b].valueDateTime");
        assert_eq!(ext, vec![&json!("2020")]);
    }

    #[test]
    fn single_objects_and_nulls() {
        let r = json!({"code": {"text": "x"}, "status": null, "list": [null, 1]});
        assert_eq!(values_at(&r, "code.text"), vec![&json!("x")]);
        assert!(values_at(&r, "status").is_empty());
        assert_eq!(values_at(&r, "list"), vec![&json!(1)]);
        assert_eq!(values_at_any(&r, &["code.text", "list"]).len(), 2);
    }
}
