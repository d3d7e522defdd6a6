//! Coolify's `# key: value` template header (see [`super::TemplateMeta`]).
