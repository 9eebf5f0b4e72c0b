//! Images: present locally, pulled with a short timeout, or built from a
//! `build:` context through the Engine's build API.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use futures_util::StreamExt;
use orchestra_manifest::Build;

use crate::error::{DockerError, message_of, status_of};
use crate::spec::project_labels;

/// How long a pull may take before Orchestra gives up on the registry.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(20);

/// The image's exposed ports (`8080/tcp`), or `None` when it is not local.
pub async fn local(d: &Docker, image: &str) -> Result<Option<Vec<String>>, DockerError> {
    match d.inspect_image(image).await {
        Ok(i) => Ok(Some(
            i.config.and_then(|c| c.exposed_ports).unwrap_or_default(),
        )),
        Err(e) if status_of(&e) == Some(404) => Ok(None),
        Err(e) => Err(DockerError::api(
            format!("cannot inspect image `{image}`"),
            e,
        )),
    }
}

/// Make sure `image` is local: pull it when it is not, within
/// [`PULL_TIMEOUT`]. Returns its exposed ports.
pub async fn ensure(
    d: &Docker,
    image: &str,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Vec<String>, DockerError> {
    if let Some(ports) = local(d, image).await? {
        return Ok(ports);
    }
    progress(format!("image {image} is not present locally: pulling it"));
    let pull = async {
        let mut s = d.create_image(
            Some(CreateImageOptions {
                from_image: Some(image.to_owned()),
                ..Default::default()
            }),
            None,
            None,
        );
        while let Some(item) = s.next().await {
            item.map_err(|e| message_of(&e))?;
        }
        Ok::<(), String>(())
    };
    let why = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "no registry answered within {}s",
            PULL_TIMEOUT.as_secs()
        )),
    };
    match (why, local(d, image).await?) {
        (None, Some(ports)) => Ok(ports),
        (why, _) => Err(DockerError::ImageMissing {
            image: image.to_owned(),
            why: why.unwrap_or_else(|| "the pull finished without the image".into()),
        }),
    }
}

/// Build `tag` from a `build:` section; progress lines go to `progress`.
pub async fn build(
    d: &Docker,
    project: &str,
    tag: &str,
    b: &Build,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), DockerError> {
    if !b.context.is_dir() {
        return Err(DockerError::BuildContextMissing {
            path: b.context.clone(),
        });
    }
    let dockerfile = b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    if !b.context.join(&dockerfile).is_file() {
        return Err(DockerError::DockerfileMissing {
            path: b.context.join(&dockerfile),
        });
    }
    let (context, df) = (b.context.clone(), dockerfile.clone());
    let archive = tokio::task::spawn_blocking(move || crate::context::pack(&context, &df))
        .await
        .map_err(|e| DockerError::Context {
            path: b.context.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
    progress(format!(
        "building {tag} from {} ({} KiB of context)",
        b.context.display(),
        archive.len() / 1024
    ));
    let opts = BuildImageOptions {
        dockerfile: dockerfile.to_string_lossy().into_owned(),
        t: Some(tag.to_owned()),
        target: b.target.clone().unwrap_or_default(),
        buildargs: Some(b.args.clone().into_iter().collect::<HashMap<_, _>>()),
        labels: Some(project_labels(project)),
        // Intermediate containers go, even when a step fails.
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    // A build may take long before the Engine first answers.
    let patient = d.clone().with_timeout(crate::replica::LONG_CALL);
    let mut s = patient.build_image(opts, None, Some(bollard::body_full(archive.into())));
    let mut step = String::from("an unknown step");
    while let Some(item) = s.next().await {
        let info = match item {
            Ok(i) => i,
            Err(e) => {
                return Err(DockerError::BuildFailed {
                    tag: tag.to_owned(),
                    step,
                    message: message_of(&e),
                });
            }
        };
        if let Some(text) = &info.stream {
            for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                if line.starts_with("Step ") {
                    step = line.to_owned();
                }
                progress(format!("build: {line}"));
            }
        }
        if let Some(message) = info.error_detail.and_then(|e| e.message) {
            progress(format!("build failed: {message}"));
            return Err(DockerError::BuildFailed {
                tag: tag.to_owned(),
                step,
                message,
            });
        }
    }
    // The legacy builder reports some failures only by not tagging.
    match local(d, tag).await? {
        Some(_) => Ok(()),
        None => Err(DockerError::BuildFailed {
            tag: tag.to_owned(),
            step,
            message: "the build ended without producing the image".into(),
        }),
    }
}
