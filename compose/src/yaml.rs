//! Reading compose YAML: anchors, aliases and merge keys resolved.
