//! Forms that work with and without the page's script. Such a form posts to its page's own path,
//! where the server's form route answers with a redirect: on to the next page, or back here with
//! the error and the typed values ([`FormFlash`]). Once the page is interactive, the same form
//! calls the server function instead and shows the answer in place. Nothing waits for the WASM:
//! a submit before hydration is a plain post, and it is not lost.

use crate::api::{ApiError, Carried, Field, FormFlash};
use crate::use_lang;
use leptos::form::FromFormData;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::de::DeserializeOwned;

/// The id of a form's error message, which the fields it names point to.
pub const ERROR_ID: &str = "form-error";

/// A `<form method="post" action=to>` that, once interactive, calls `action` instead.
#[component]
pub fn PostForm<S>(action: ServerAction<S>, to: &'static str, children: Children) -> impl IntoView
where
    S: ServerFn<Error = ApiError> + DeserializeOwned + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match S::from_event(&ev) {
            Ok(input) => {
                action.dispatch(input);
            }
            Err(e) => action
                .value()
                .set(Some(Err(ApiError::BadRequest(e.to_string())))),
        }
    };
    view! {
        <form method="post" action=to class="form" novalidate=true on:submit=on_submit>
            {children()}
        </form>
    }
}

/// What the page's form came back with after a post without script: taken on the server while
/// it renders the page, and handed to the browser with the page for hydration. `None` when the
/// page is reached any other way.
pub fn posted(page: &'static str) -> Option<FormFlash> {
    SharedValue::new_str(move || {
        #[cfg(feature = "ssr")]
        {
            Carried(crate::ssr::take_form_flash(page))
        }
        #[cfg(not(feature = "ssr"))]
        {
            let _ = page;
            Carried(None)
        }
    })
    .into_inner()
    .0
}

/// The form's error: the last answer of the reactive form, else what a post came back with.
pub fn form_error<T, R>(result: R, posted: &Option<FormFlash>) -> Signal<Option<ApiError>>
where
    T: Clone + Send + Sync + 'static,
    R: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    let posted = posted.as_ref().map(|f| f.error.clone());
    Signal::derive(move || match result.get() {
        Some(r) => r.err(),
        None => posted.clone(),
    })
}

/// The form's error as `role="alert"`. When one appears (after a submit, or on a page the server
/// sent back with one), focus moves to it, so that keyboard and screen reader users land on it.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<ApiError>>) -> impl IntoView {
    let lang = use_lang();
    let node = NodeRef::<leptos::html::P>::new();
    // An error the page was sent with (a post without script came back) is focused by the
    // browser at load (`autofocus`); not again when the script takes over, by which time the
    // person may be typing elsewhere. Errors after that take the focus when they appear.
    let at_load = error.get_untracked().is_some();
    Effect::new(move |ran_before: Option<()>| {
        if error.get().is_some() && ran_before.is_some() {
            focus_soon(node);
        }
    });
    view! {
        <p
            id=ERROR_ID
            node_ref=node
            role="alert"
            class="error"
            tabindex="-1"
            autofocus=at_load
            hidden=move || error.get().is_none()
        >
            {move || error.get().map(|e| e.message(lang.get()))}
        </p>
    }
}

/// Focuses the (error) paragraph after the browser has drawn the change that showed it.
pub fn focus_soon(node: NodeRef<leptos::html::P>) {
    request_animation_frame(move || {
        if let Some(element) = node.get_untracked() {
            let _ = element.focus();
        }
    });
}

/// `aria-invalid` for a field: whether the error names it.
pub fn invalid(error: Signal<Option<ApiError>>, field: Field) -> impl Fn() -> &'static str + Copy {
    move || {
        if names(&error.get(), field) {
            "true"
        } else {
            "false"
        }
    }
}

/// `aria-describedby` for a field: its own hint (if any) and the error when the error names it.
pub fn described_by(
    error: Signal<Option<ApiError>>,
    field: Field,
    hint: Option<&'static str>,
) -> impl Fn() -> Option<String> + Copy {
    move || {
        let mut ids: Vec<&str> = hint.into_iter().collect();
        if names(&error.get(), field) {
            ids.push(ERROR_ID);
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }
}

fn names(error: &Option<ApiError>, field: Field) -> bool {
    matches!(error, Some(ApiError::Invalid { field: f, .. }) if *f == field)
}
