//! Compose variable interpolation: `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?err}`, `$VAR`, `$$`.
