//! promio.connect's server: the front doors that are not server functions (plain HTTP routes and
//! forms, the OpenID Provider, the command line) and the wiring of the whole. The layers below
//! are the crate `promio_core` (re-exported here under their names), the server functions and
//! the principals they resolve are in `promio_app::edge`.

pub mod edge;

pub use edge::serve;
pub use promio_core::{Core, domain, idm, infra, store};
