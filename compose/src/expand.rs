//! Expansion: a compose file into the child objects of a Service.
