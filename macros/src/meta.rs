//! Pieces of attribute parsing both macros use.

use syn::meta::ParseNestedMeta;
use syn::{LitStr, Path};

/// The value of a `crate = "path"` item: where the `steadfast` crate is.
pub(crate) fn crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let literal: LitStr = meta.value()?.parse()?;
    literal.parse::<Path>().map_err(|_| {
        syn::Error::new(
            literal.span(),
            format!(
                "`crate = \"{}\"` is not a path; write the path to the `steadfast` crate, as in `crate = \"::steadfast\"`",
                literal.value()
            ),
        )
    })
}

/// A path as written, `a::b`, for messages.
pub(crate) fn path_text(path: &Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}
