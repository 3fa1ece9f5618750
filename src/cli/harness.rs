//! The harness run as a command: validate the flags, run, print the
//! summary, finish the report files, and map the outcome to an exit code.

use crate::cli::run_args::RunArgs;
use crate::report;

/// The harness run: validate, run, print the summary, map to an exit code.
pub fn run(args: RunArgs) -> i32 {
    let result = args.into_config().and_then(|mut cfg| {
        report::set_color(cfg.libtest.color);
        cfg.safety = cfg.safety.with_observer(report::safety::observer());
        let safety = cfg.safety.clone();
        let json = matches!(cfg.libtest.format, Some(libtest_mimic::FormatSetting::Json));
        let observer = cfg.verbose.then(report::verbose::observer);
        // A closed stdout or stderr (`| head`) stops the run like a first
        // Ctrl-C: what was changed is undone, then exit 141.
        let interrupt = safety.interrupt.clone();
        report::term::on_closed(move |stream| {
            if interrupt.raise(crate::safety::teardown::Signal::OutputClosed) == 1 {
                report::term::err(&format!(
                    "vegehub-harness: {stream} closed: stopping the run and undoing what it changed"
                ));
            }
        });
        // Progress lines belong with the human lines; the JSON stream
        // writes stdout itself.
        let _progress = if json {
            None
        } else {
            report::progress::start()
        };
        crate::run::run(cfg, observer).map(|r| (r, json, safety))
    });
    match result {
        Ok((report, ..)) if report.listed_only => crate::exit_code::SUCCESS,
        Ok((report, json, safety)) => {
            let mut text = report::console::summary(&report);
            if let Some(soak) = &report.soak {
                text.push_str(&report::soak::summary(soak));
            }
            // Keep stdout a clean JSON stream with --format json; a closed
            // stdout must not stop the final reports (term drops quietly).
            let out_closed = report::term::is_closed(report::term::Stream::Stdout);
            if json || report.harness_error.is_some() || out_closed {
                report::term::err(text.trim_end_matches('\n'));
            } else {
                report::term::out(&text);
            }
            let left = safety.obligations.leftovers();
            if !left.is_empty() {
                report::term::err(&format!(
                    "vegehub-harness: {}",
                    report::safety::left_after_run(&left)
                ));
            }
            let mut code = report.exit_code();
            if !left.is_empty() {
                // Owed and not verified undone (a hub thread that died).
                code = crate::exit_code::HUB_MODIFIED;
            }
            if let Some(e) = &report.harness_error {
                report::term::err(&format!(
                    "vegehub-harness: error: {}",
                    report::escape::escape(e)
                ));
                code = code.max(crate::exit_code::SCENARIO_FAILED);
            }
            // The last write of the reports, with how the run ended.
            match report
                .reports
                .as_ref()
                .map(|r| r.finish(report.status(), code, report.harness_error.clone()))
            {
                Some(Err(e)) => {
                    report::term::err(&format!(
                        "vegehub-harness: error: {}",
                        report::escape::escape(&format!("{e:#}"))
                    ));
                    code.max(crate::exit_code::SCENARIO_FAILED)
                }
                _ => code,
            }
        }
        Err(e) => {
            report::term::err(&format!(
                "vegehub-harness: error: {}",
                report::escape::escape(&format!("{e:#}"))
            ));
            e.exit_code()
        }
    }
}
