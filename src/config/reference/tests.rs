//! The reference is the checked-in `docs/config.md`.

use std::path::Path;

use super::*;

#[test]
fn docs_config_md_is_the_rendering_of_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
    let rendered = reference_markdown();
    if std::env::var_os("WARDEN_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != rendered {
        let first = checked_in.lines().zip(rendered.lines()).position(|(a, b)| a != b);
        let line = first.unwrap_or_else(|| checked_in.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/config.md is not the rendering of the config schema (first difference at line {}); \
             regenerate it with\n    WARDEN_UPDATE_DOCS=1 cargo test --lib config::reference\nand commit it",
            line + 1
        );
    }
}

#[test]
fn every_option_says_what_it_means() {
    for place in places() {
        for opt in place.table.options() {
            let path = place.option_path(opt);
            assert!(!opt.means.trim().is_empty(), "{path} has no meaning in the reference");
            for text in [opt.means, opt.differs, opt.default] {
                assert!(!text.ends_with('.') && !text.contains('\n'), "{path}: one line without a full stop: {text:?}");
            }
        }
    }
}
