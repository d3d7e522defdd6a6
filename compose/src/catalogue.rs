//! berth's own service templates (`manifests/templates/`), compiled into the binary.
