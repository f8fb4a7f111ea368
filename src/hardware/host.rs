//! The host: OS, kernel, CPU, memory (sysinfo, refreshing only memory and the CPU list: no
//! usage sampling, so no sleep), free disk where the state and model dirs live, and whether this
//! runs in a container or WSL. Blocking; `probe` runs it on the blocking pool.

use std::path::{Path, PathBuf};

use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, System};

use super::exec::{self, bytes_to_mib};
use super::report::{DiskSpace, HostInfo};

/// Reads the host on the blocking pool.
pub(crate) async fn probe(
    state_dir: PathBuf,
    model_dir: Option<PathBuf>,
) -> Result<HostInfo, String> {
    tokio::task::spawn_blocking(move || probe_blocking(&state_dir, model_dir.as_deref()))
        .await
        .map_err(|e| format!("host probe crashed: {e}"))
}

/// Reads the host. Every part that fails is `null`.
pub fn probe_blocking(state_dir: &Path, model_dir: Option<&Path>) -> HostInfo {
    let mut info = HostInfo {
        arch: std::env::consts::ARCH.to_owned(),
        os: System::long_os_version().ok(),
        kernel: System::kernel_version().ok(),
        cpu_cores: System::physical_core_count()
            .ok()
            .and_then(|n| u32::try_from(n).ok()),
        ..HostInfo::default()
    };
    if let Ok(mut sys) = System::new() {
        sys.refresh_memory();
        sys.refresh_cpu_list(CpuRefreshKind::nothing());
        info.memory_total_mib = Some(bytes_to_mib(sys.total_memory())).filter(|m| *m > 0);
        info.memory_available_mib =
            Some(bytes_to_mib(sys.available_memory())).filter(|_| info.memory_total_mib.is_some());
        let cpus = sys.cpus();
        info.cpu_threads = u32::try_from(cpus.len()).ok().filter(|n| *n > 0);
        info.cpu_model = cpus
            .first()
            .map(|c| c.brand().trim().to_owned())
            .filter(|b| !b.is_empty());
    }
    if info.cpu_threads.is_none() {
        info.cpu_threads = std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok());
    }

    let disks =
        Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage()).ok();
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .ok()
        .map(|t| parse_mounts(&t));
    info.state_dir = disk_space(state_dir, disks.as_ref(), mounts.as_deref());
    info.model_dir = model_dir.map(|d| disk_space(d, disks.as_ref(), mounts.as_deref()));

    let root = Path::new("/");
    info.container_hint = detect_container(root)
        .or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").map(|_| "kubernetes".to_owned()));
    info.in_container = info.container_hint.is_some();
    info.wsl = is_wsl(root) || std::env::var_os("WSL_DISTRO_NAME").is_some();
    info
}

/// A mount from `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// Parses `/proc/self/mounts` (`spec mount_point fstype options …`, octal escapes for spaces).
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _spec = f.next()?;
            let mp = f.next()?;
            let fs_type = f.next()?.to_owned();
            let mp = mp
                .replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\");
            Some(Mount {
                mount_point: PathBuf::from(mp),
                fs_type,
            })
        })
        .collect()
}

/// Index of the mount point that contains `path`: the longest one that is a prefix of it (by
/// path components); among equal ones the last, since later mounts shadow earlier ones.
pub fn pick_mount<'a>(
    path: &Path,
    mount_points: impl IntoIterator<Item = &'a Path>,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, mp) in mount_points.into_iter().enumerate() {
        if path.starts_with(mp) {
            let depth = mp.components().count();
            if best.is_none_or(|(_, d)| depth >= d) {
                best = Some((i, depth));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// The deepest existing ancestor of `path` (itself included), canonicalised: where files under
/// `path` will land even if it does not exist yet.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    abs.ancestors().find_map(|a| a.canonicalize().ok())
}

fn disk_space(path: &Path, disks: Option<&Disks>, mounts: Option<&[Mount]>) -> DiskSpace {
    let mut space = DiskSpace {
        path: exec::display(path),
        ..DiskSpace::default()
    };
    let Some(resolved) = existing_ancestor(path) else {
        space.note = Some("no existing ancestor directory".to_owned());
        return space;
    };
    let Some(disks) = disks else {
        space.note = Some("disk list unavailable".to_owned());
        return space;
    };
    let disk_list: &[sysinfo::Disk] = disks;
    // The kernel's mount table is the truth about which filesystem holds the path; sysinfo
    // leaves out network and memory filesystems, so a bare longest-prefix over its list could
    // report the parent filesystem instead.
    let disk = if let Some(mounts) = mounts.filter(|m| !m.is_empty()) {
        let Some(i) = pick_mount(&resolved, mounts.iter().map(|m| m.mount_point.as_path())) else {
            space.note = Some("no mount contains the path".to_owned());
            return space;
        };
        let mount = &mounts[i];
        space.mount_point = Some(exec::display(&mount.mount_point));
        let found = disk_list
            .iter()
            .rev()
            .find(|d| d.mount_point() == mount.mount_point);
        if found.is_none() {
            space.note = Some(format!("{} filesystem not measured", mount.fs_type));
        }
        found
    } else {
        let i = pick_mount(&resolved, disk_list.iter().map(sysinfo::Disk::mount_point));
        i.map(|i| &disk_list[i])
    };
    if let Some(d) = disk {
        space.mount_point = Some(exec::display(d.mount_point()));
        space.free_mib = Some(bytes_to_mib(d.available_space()));
        space.total_mib = Some(bytes_to_mib(d.total_space()));
    } else if space.note.is_none() {
        space.note = Some("no disk contains the path".to_owned());
    }
    space
}

/// What gives a container away under `root`: `/.dockerenv`, `/run/.containerenv`, PID 1's
/// cgroup, or the mount table.
pub fn detect_container(root: &Path) -> Option<String> {
    if root.join(".dockerenv").exists() {
        return Some("docker".to_owned());
    }
    if root.join("run/.containerenv").exists() {
        return Some("podman".to_owned());
    }
    let hints = [
        ("kubepods", "kubernetes"),
        ("libpod", "podman"),
        ("docker", "docker"),
        ("containerd", "containerd"),
        ("lxc", "lxc"),
    ];
    let cgroup = std::fs::read_to_string(root.join("proc/1/cgroup")).unwrap_or_default();
    // Only the root mount: a host running containers has their mounts in its table too.
    let root_mount = std::fs::read_to_string(root.join("proc/self/mountinfo"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_default()
        .to_owned();
    [cgroup, root_mount].iter().find_map(|text| {
        hints
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map(|(_, name)| (*name).to_owned())
    })
}

/// WSL kernels say `microsoft` in `/proc/version`.
pub fn is_wsl(root: &Path) -> bool {
    std::fs::read_to_string(root.join("proc/version"))
        .is_ok_and(|v| v.to_ascii_lowercase().contains("microsoft"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_pick_the_deepest_and_last() {
        let mounts = parse_mounts(
            "/dev/vda / ext4 rw 0 0\nserver:/x /srv/models nfs4 rw 0 0\ntmpfs /srv/models\\040b tmpfs rw 0 0\n/dev/vdb / ext4 rw 0 0\n",
        );
        assert_eq!(mounts[2].mount_point, PathBuf::from("/srv/models b"));
        let mps: Vec<&Path> = mounts.iter().map(|m| m.mount_point.as_path()).collect();
        assert_eq!(
            pick_mount(Path::new("/srv/models/llama"), mps.clone()),
            Some(1)
        );
        assert_eq!(pick_mount(Path::new("/srv/modelsX"), mps.clone()), Some(3));
        assert_eq!(
            pick_mount(Path::new("/srv/models b/x"), mps.clone()),
            Some(2)
        );
        assert_eq!(pick_mount(Path::new("relative"), mps), None);
    }

    #[test]
    fn container_and_wsl_hints_from_a_fake_root() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(detect_container(root.path()), None);
        assert!(!is_wsl(root.path()));
        std::fs::create_dir_all(root.path().join("proc/1")).unwrap();
        std::fs::write(
            root.path().join("proc/1/cgroup"),
            "0::/kubepods/besteffort/pod1\n",
        )
        .unwrap();
        assert_eq!(detect_container(root.path()).as_deref(), Some("kubernetes"));
        std::fs::write(root.path().join("proc/1/cgroup"), "0::/init.scope\n").unwrap();
        std::fs::create_dir_all(root.path().join("proc/self")).unwrap();
        std::fs::write(
            root.path().join("proc/self/mountinfo"),
            "29 1 8:1 / / rw - ext4 /dev/sda1 rw\n512 29 0:50 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw\n",
        )
        .unwrap();
        assert_eq!(
            detect_container(root.path()),
            None,
            "a docker host is not a container"
        );
        std::fs::write(
            root.path().join("proc/self/mountinfo"),
            "600 500 0:52 / / rw - overlay overlay rw,upperdir=/var/lib/docker/overlay2/abc/diff\n",
        )
        .unwrap();
        assert_eq!(detect_container(root.path()).as_deref(), Some("docker"));
        std::fs::write(root.path().join(".dockerenv"), "").unwrap();
        assert_eq!(detect_container(root.path()).as_deref(), Some("docker"));
        std::fs::write(
            root.path().join("proc/version"),
            "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1)",
        )
        .unwrap();
        assert!(is_wsl(root.path()));
    }

    #[test]
    fn probe_on_this_machine_fills_the_basics() {
        let dir = tempfile::tempdir().unwrap();
        let not_yet = dir.path().join("state/does/not/exist");
        let info = probe_blocking(&not_yet, Some(dir.path()));
        assert!(!info.arch.is_empty());
        assert!(info.memory_total_mib.is_some_and(|m| m > 0));
        assert!(info.cpu_threads.is_some_and(|n| n > 0));
        assert_eq!(info.state_dir.path, not_yet.display().to_string());
        assert!(info.state_dir.mount_point.is_some(), "{:?}", info.state_dir);
        assert!(info.model_dir.is_some());
    }
}
