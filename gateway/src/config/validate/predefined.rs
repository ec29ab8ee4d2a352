//! `[[predefined]]` (plus `--predefined`) → `PredefinedTopics`.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Ctx;
use crate::config::ConfigError;
use crate::config::file::FilePredefined;
use crate::config::values;
use crate::core::config::PredefinedTopics;

/// Where an entry came from, for "already defined" messages.
type Origins = BTreeMap<(Option<String>, u16), usize>;

/// Validates the file's entries, then adds the global `flags` (replacing a file entry with the
/// same id).
pub(super) fn validate(
    cx: &Ctx<'_>,
    entries: &[FilePredefined],
    client_id_max_len: usize,
    flags: &[(u16, String)],
) -> Result<PredefinedTopics, ConfigError> {
    let mut out = PredefinedTopics::default();
    let mut origins = Origins::new();
    for (i, e) in entries.iter().enumerate() {
        let id = values::predefined_id(e.id.get_ref().0)
            .map_err(|r| cx.at(&e.id, &format!("predefined[{i}].id"), r))?;
        let topic = e.topic.get_ref();
        values::concrete_topic(topic)
            .map_err(|r| cx.at(&e.topic, &format!("predefined[{i}].topic"), r))?;
        for scope in scopes(cx, e, i, client_id_max_len)? {
            let map = match &scope {
                None => &mut out.global,
                Some(c) => out.per_client.entry(c.clone()).or_default(),
            };
            let whose = scope
                .as_ref()
                .map_or_else(|| "globally".to_owned(), |c| format!("for {c:?}"));
            if let Some(j) = origins.get(&(scope.clone(), id)) {
                return Err(cx.at(
                    &e.id,
                    &format!("predefined[{i}].id"),
                    format!("id {id} is already predefined {whose} (predefined[{j}])"),
                ));
            }
            if let Some((other, _)) = map.iter().find(|(_, t)| *t == topic) {
                return Err(cx.at(
                    &e.topic,
                    &format!("predefined[{i}].topic"),
                    format!("{topic:?} is already predefined {whose} as id {other}"),
                ));
            }
            map.insert(id, topic.clone());
            origins.insert((scope, id), i);
        }
    }

    let mut seen = Vec::new();
    for (id, topic) in flags {
        let flag_err = |reason: String| ConfigError::Flag {
            flag: "--predefined".into(),
            reason,
        };
        if seen.contains(id) {
            return Err(flag_err(format!("id {id} is given twice")));
        }
        seen.push(*id);
        if let Some((other, _)) = out.global.iter().find(|(o, t)| *t == topic && *o != id) {
            return Err(flag_err(format!(
                "{topic:?} is already predefined globally as id {other}"
            )));
        }
        out.global.insert(*id, topic.clone());
    }
    Ok(out)
}

/// The scopes of entry `e`: `[None]` for global, else one `Some(client)` per ClientId.
fn scopes(
    cx: &Ctx<'_>,
    e: &FilePredefined,
    i: usize,
    client_id_max_len: usize,
) -> Result<Vec<Option<String>>, ConfigError> {
    let Some(list) = &e.clients else {
        return Ok(vec![None]);
    };
    let clients = list.get_ref();
    let key = |j: usize| format!("predefined[{i}].clients[{j}]");
    let star = |c: &Spanned<String>| c.get_ref() == "*";
    if clients.is_empty() {
        return Err(cx.at(
            list,
            &format!("predefined[{i}].clients"),
            "the list is empty; leave clients out (or use [\"*\"]) for a global id",
        ));
    }
    if clients.len() == 1 && clients.iter().all(star) {
        return Ok(vec![None]);
    }
    let mut out: Vec<Option<String>> = Vec::new();
    for (j, c) in clients.iter().enumerate() {
        let id = c.get_ref();
        if star(c) {
            return Err(cx.at(
                c,
                &key(j),
                "\"*\" (every client) cannot be mixed with ClientIds",
            ));
        }
        if id.is_empty() {
            return Err(cx.at(c, &key(j), "empty ClientId"));
        }
        if id.len() > client_id_max_len {
            return Err(cx.at(
                c,
                &key(j),
                format!(
                    "{id:?} is longer than gateway.client_id_max_len ({client_id_max_len}) and \
                     could never connect"
                ),
            ));
        }
        if out.iter().any(|o| o.as_deref() == Some(id.as_str())) {
            return Err(cx.at(c, &key(j), format!("{id:?} is listed twice")));
        }
        out.push(Some(id.clone()));
    }
    Ok(out)
}
