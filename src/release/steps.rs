//! The step primitives a transition and its undo are made of: stop and start Movim, write the
//! files, ask `phinx status`, pick how the database is dumped and restored, pre-pull.

use crate::adapters::Tools;
use crate::adapters::backup;
use crate::adapters::db;
use crate::adapters::fsx::Transaction;
use crate::adapters::runner::Probe;
use crate::context::Context;
use crate::core::deployment::DbEndpoint;
use crate::core::deployment::{Database, Deployment};
use crate::core::image_ref::ImageRef;
use crate::core::journal::Journal;
use crate::core::layout::Layout;
use crate::core::plan::{self, Migrations};
use crate::core::render::{self, COMPOSE_FILE, Extras};
use crate::core::secret::Secret;
use crate::error::{Failure, OrFail};
use crate::stack;
use std::collections::BTreeMap;

pub async fn prepull(ctx: &Context, tools: &Tools, j: &Journal) -> Result<(), Failure> {
    let mut wanted: Vec<String> = j.to.images.values().cloned().collect();
    wanted.extend(j.backup_tool.clone());
    let hint = format!("movim-setup {} --dir {}", j.kind.verb(), ctx.dir.display());
    stack::pull_pinned(ctx, tools, &wanted, &hint).await
}

/// What the target release's daemon image says about the database (`phinx status`), asked in a
/// one-shot container of that image while the current release keeps serving.
pub async fn probe_migrations(
    ctx: &Context,
    tools: &Tools,
    to: &Deployment,
    images: &BTreeMap<String, String>,
    password: &Secret,
) -> Result<Migrations, Failure> {
    ctx.ui.step(&format!(
        "asking {}'s daemon image which migrations it would run (phinx status)",
        to.version
    ));
    let image = images
        .get("daemon")
        .ok_or_else(|| Failure::new(format!("{} pins no daemon image", to.version)))?;
    let files = render::files(
        to,
        &render::Secrets {
            db_password: password.clone(),
        },
        images,
        &Extras::default(),
    )
    .map_err(|e| Failure::new("cannot render the target's compose file").detail(e))?;
    let compose = files
        .get(COMPOSE_FILE)
        .ok_or_else(|| Failure::new("the renderer wrote no compose file"))?;
    let release = Probe {
        daemon_image: image,
        compose_file: &compose.content,
    };
    let (code, output) = tools
        .runner
        .probe_php(
            &ctx.dir,
            &to.project,
            &release,
            &["vendor/bin/phinx", "status"],
        )
        .await
        .or_fail(|| format!("cannot run `phinx status` of {}", to.version))?;
    parse_status(code, &output, to)
}

pub fn parse_status(code: i32, output: &str, to: &Deployment) -> Result<Migrations, Failure> {
    plan::parse_phinx_status(code, output).map_err(|e| {
        Failure::new(format!(
            "cannot tell which migrations {} would run",
            to.version
        ))
        .detail(e)
    })
}

/// The files of `layout` an upgrade or rollback rewrites besides the answers and the lock,
/// rendered for `d` running `images`: `compose.yaml`; or `kube/podman.yaml` and `kube/movim.yaml`.
pub fn layout_files(
    ctx: &Context,
    layout: Layout,
    d: &Deployment,
    password: &Secret,
    images: &BTreeMap<String, String>,
) -> Result<Vec<(&'static str, render::File)>, Failure> {
    let dir = std::path::absolute(&ctx.dir)
        .or_fail(|| format!("cannot resolve {}", ctx.dir.display()))?;
    layout
        .running_files(d, password, images, &dir)
        .map_err(|e| Failure::new("cannot render the deployment's files").detail(e))
}

/// Writes files of the deployment directory in one transaction (previous versions kept).
pub fn put_files(ctx: &Context, files: &[(&str, &[u8], u32)]) -> Result<(), Failure> {
    let dir = &ctx.dir;
    let stamp = ctx.clock.now_rfc3339().replace(':', "");
    let mut tx = Transaction::new(dir, &stamp);
    for (name, content, mode) in files {
        tx.write(name, content, *mode)
            .or_fail(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    tx.commit();
    Ok(())
}

/// Stops web, daemon and fpm (the database and XMPP server keep running).
pub async fn stop_movim(ctx: &Context, tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    tools
        .runner
        .stop_movim(&ctx.dir, &d.project)
        .await
        .or_fail(|| "cannot stop web, daemon, fpm".to_owned())
}

/// Starts Movim's services in the runner's order ([`crate::adapters::runner::Runner::movim_start_order`]), each group
/// behind its health gate.
pub async fn start_movim(ctx: &Context, tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    for group in tools.runner.movim_start_order() {
        stack::start_healthy(ctx, tools, d, group).await?;
    }
    Ok(())
}

/// `phinx status` of the daemon image the compose file names now.
pub async fn phinx_status(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
) -> Result<Migrations, Failure> {
    let (code, output) = tools
        .runner
        .daemon_php(&ctx.dir, &d.project, &["vendor/bin/phinx", "status"])
        .await
        .or_fail(|| format!("cannot run `phinx status` of {}", d.version))?;
    plan::parse_phinx_status(code, &output).map_err(|e| {
        Failure::new(format!(
            "cannot tell whether {} reads the database",
            d.version
        ))
        .detail(e)
    })
}

/// How to dump and restore this deployment's database (see [`crate::adapters::backup`]).
pub async fn backup_source(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
    tool: Option<String>,
) -> Result<backup::Source, Failure> {
    let DbEndpoint { name, user, .. } = d.database.endpoint();
    match &d.database {
        Database::Bundled => {
            let running = stack::container(tools, &d.project, "postgres")
                .await?
                .filter(|c| c.running);
            let c = match running {
                Some(c) => c,
                None => {
                    stack::start_healthy(ctx, tools, d, &["postgres"]).await?;
                    stack::container(tools, &d.project, "postgres")
                        .await?
                        .ok_or_else(|| Failure::new("the postgres container does not exist"))?
                }
            };
            Ok(backup::Source::Container {
                id: c.id,
                user: user.to_owned(),
                database: name.to_owned(),
            })
        }
        Database::External { host, .. } => {
            let image = tool.ok_or_else(|| {
                Failure::new("no pg_dump image is recorded for the external database")
            })?;
            let by_digest = ImageRef::parse(&image)
                .ok()
                .and_then(|i| i.digest.clone().map(|dg| i.by_digest(&dg)))
                .unwrap_or_else(|| image.clone());
            Ok(backup::Source::OneShot {
                cli: tools.engine.kind().to_string(),
                image: by_digest,
                target: db::DbTarget::at(d.database.endpoint(), host.clone(), password.clone()),
            })
        }
    }
}

/// The command that loads a kept dump (`file`, absolute) into a new database beside the running
/// one, named after the release the dump belongs to, to read back what users wrote on it.
#[must_use]
pub fn read_back_command(
    tools: &Tools,
    d: &Deployment,
    file: &std::path::Path,
    version: &str,
) -> String {
    let DbEndpoint {
        host,
        port,
        name,
        user,
    } = d.database.endpoint();
    let scratch = format!("{name}_{}", version.replace(['.', '-'], "_"));
    let file = crate::core::shell::quote(&file.to_string_lossy());
    match &d.database {
        Database::Bundled => format!(
            "{} < {file}",
            tools.commands(&d.project).exec_input(
                "postgres",
                &format!(
                    "sh -c 'createdb -U {user} {scratch} && pg_restore --no-owner -U {user} -d {scratch}'"
                ),
            )
        ),
        Database::External { .. } => {
            format!(
                "createdb -h {host} -p {port} -U {user} {scratch} && pg_restore --no-owner -h {host} -p {port} -U {user} -d {scratch} {file}   (the password is DB_PASSWORD in movim.env)"
            )
        }
    }
}
