//! What the daemons' command lines share: `--config` and `--data-dir` ([`ConfigArgs`]), `init`
//! ([`InitArgs`], writing the commented config file), logging to stdout ([`init_logging`]),
//! and mapping the outcome to an exit code ([`exit_code`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tracing_subscriber::filter::LevelFilter;

use crate::config::ConfigFile;

/// Where the configuration and the data are.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (default: built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// The configuration these options describe ([`ConfigFile::load_or_default`]).
    ///
    /// # Errors
    ///
    /// The configuration error.
    pub fn load<C: ConfigFile>(&self) -> Result<C, C::Error> {
        C::load_or_default(self.config.as_deref(), self.data_dir.as_deref())
    }
}

/// The exit code of a command: success, also when it failed on a broken pipe (output piped
/// into `head`); otherwise `error: <the error and its causes>` on stderr and failure.
pub fn exit_code(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The options of `init`, which writes the commented config file.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(long, default_value = "config.toml")]
    pub config: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

impl InitArgs {
    /// Writes `template` (the commented config file) to `--config`, which must not exist
    /// unless `--force`, and says so on stdout.
    ///
    /// # Errors
    ///
    /// When the file exists (without `--force`) or cannot be written.
    pub fn write(&self, template: &str) -> anyhow::Result<()> {
        let path = &self.config;
        if path.exists() && !self.force {
            anyhow::bail!("{} exists; use --force to overwrite it", path.display());
        }
        std::fs::write(path, template).with_context(|| format!("writing {}", path.display()))?;
        writeln!(std::io::stdout(), "wrote {}", path.display())?;
        Ok(())
    }
}

/// Changes the level of the logs installed by [`init_logging`].
pub type LogControl = Arc<dyn Fn(LevelFilter) + Send + Sync>;

/// Installs the global logger: human-readable lines on stdout (colored on a terminal) at
/// `level`. Does nothing when a logger is installed already. Returns the function that
/// changes the level later (on SIGHUP, say).
pub fn init_logging(level: LevelFilter) -> LogControl {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(level);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stdout)
                .with_ansi(std::io::stdout().is_terminal()),
        )
        .try_init();
    Arc::new(move |level| {
        let _ = handle.modify(|f| *f = level);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_success() {
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the output");
        assert!(is_broken_pipe(&pipe));
        assert_eq!(exit_code(Err(pipe)), ExitCode::SUCCESS);
        let other = anyhow::anyhow!("no");
        assert!(!is_broken_pipe(&other));
        assert_eq!(exit_code(Err(other)), ExitCode::FAILURE);
        assert_eq!(exit_code(Ok(())), ExitCode::SUCCESS);
    }

    #[test]
    fn template_is_not_overwritten_without_force() {
        let dir = std::env::temp_dir().join(format!("tolldns-service-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let mut init = InitArgs {
            config: path.clone(),
            force: false,
        };
        init.write("a = 1\n").unwrap();
        let e = init.write("a = 2\n").unwrap_err();
        assert!(e.to_string().contains("use --force"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 1\n");
        init.force = true;
        init.write("a = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
