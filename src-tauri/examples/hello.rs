//! A hello-world Tauri window, the baseline that `scripts/bench-console.sh`
//! measures the console's memory against (same Tauri, same WebKitGTK).

use tauri::{WebviewUrl, WebviewWindowBuilder};

fn main() {
    let mut context = tauri::generate_context!();
    // No console window and no bundle identity clash: one plain window.
    context.config_mut().app.windows.clear();
    context.config_mut().identifier = "com.licenseconsole.hello".into();
    let result = tauri::Builder::default()
        .setup(|app| {
            let url = "about:blank".parse().map_err(|e| format!("bad URL: {e}"))?;
            let window = WebviewWindowBuilder::new(app, "main", WebviewUrl::External(url))
                .title("Hello")
                .inner_size(1024.0, 760.0)
                .build()?;
            window.eval("document.body.innerHTML = '<h1>Hello, world</h1>'")?;
            Ok(())
        })
        .run(context);
    if let Err(err) = result {
        eprintln!("hello: {err}");
        std::process::exit(1);
    }
}
