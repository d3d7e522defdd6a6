//! Coolify's magic `SERVICE_*` variables: recognising names and generating values.
