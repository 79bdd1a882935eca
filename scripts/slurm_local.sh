#!/usr/bin/env bash
# Single-node Slurm "cluster" on this machine, for integration tests of the submitit-based sweeps.
#   scripts/slurm_local.sh start    # install slurm-wlm + munge if needed, configure, start, wait until idle
#   scripts/slurm_local.sh status   # print sinfo; exit 0 iff partition `debug` has an idle/mixed node
#   scripts/slurm_local.sh stop     # stop slurmd + slurmctld (munged is left running: harmless, reused by start)
# Needs root (Debian 12 / bookworm). No systemd is assumed: the daemons are started directly and
# daemonise themselves. No accounting (so `sacct` does not work) and no cgroups are used.
# Env: SLURM_LOCAL_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

NODE=$(hostname -s)            # slurmd finds its NodeName by the short hostname
PARTITION=debug
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
LOGDIR=/var/log/slurm

say() { echo "[slurm_local] $*"; }
die() { echo "[slurm_local] ERROR: $*" >&2; exit 1; }

# Debian >= 11 reads /etc/slurm, older releases /etc/slurm-llnl (the path is compiled into the binaries).
conf_dir() { if [[ ! -d /etc/slurm && -d /etc/slurm-llnl ]]; then echo /etc/slurm-llnl; else echo /etc/slurm; fi; }

running() { local p; for p; do grep -qs '^State:[[:space:]]*[^Z]' "/proc/$p/status" && return 0; done; return 1; }
# pid of a live daemon (slurmctld|slurmd) from its pid file. The name is checked because a stale
# pid file may name an unrelated process; /proc, not ps: procps is not in minimal Debian images.
daemon_pid() {
  local p
  p=$(cat "/run/$1.pid" 2>/dev/null) && [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$1" ]] && running "$p" && echo "$p"
}
alive() { daemon_pid "$1" >/dev/null; }
node_state() { sinfo -h -p "$PARTITION" -n "$NODE" -o %t 2>/dev/null | head -n1; }
# sinfo appends * (not responding), ~ (powered off), ... to the state: only plain states count as up.
ready() { alive slurmctld && alive slurmd && [[ $(node_state) =~ ^(idle|mix|alloc)$ ]]; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  say "installing slurm-wlm and munge with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  local pkgs=(slurm-wlm munge) policy=/usr/sbin/policy-rc.d added=0 rc=0
  # Stop the packages' scripts from starting the services with no slurm.conf yet (which can fail the
  # install); we start them ourselves below. Docker's Debian images already ship such a policy-rc.d.
  [[ -e $policy ]] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; added=1; }
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } || rc=$?
  if (( added )); then rm -f "$policy"; fi
  (( rc == 0 )) || die "apt-get install ${pkgs[*]} failed"
}

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then     # the munge package normally creates one; make sure
    say "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key  # munged refuses lax perms
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0                 # already running
  install -d -o munge -g munge -m 0755 /run/munge      # normally made by systemd-tmpfiles
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged || die "munged failed to start (see /var/log/munge/munged.log)"
  for _ in $(seq 20); do munge -n | unmunge >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "munge does not work (see /var/log/munge/munged.log)"
}

write_conf() {
  local dir mem
  dir=$(conf_dir)
  # RealMemory must not exceed what slurmd detects, or the node is drained: take 90% of what is
  # available now, rounded down to whole GiB so that it rarely changes between runs.
  # MailProg=/bin/true: no mailer is installed, and slurmctld logs an error without a valid one.
  # EnforcePartLimits=ALL: a request the node can never satisfy (e.g. more CPUs) fails at sbatch
  # instead of pending forever with reason PartitionConfig.
  mem=$(awk '/^MemAvailable:/ {print int($2 / 1024 * 0.9 / 1024) * 1024}' /proc/meminfo)  # MB, whole GiB
  install -d "$dir" "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
  cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm_local.sh: minimal single-node cluster, no accounting, no cgroups.
ClusterName=whatwhere
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
NodeName=$NODE CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  say "wrote $dir/slurm.conf (node $NODE, CPUs=$(nproc), RealMemory=${mem}M)"
}

show_logs() { tail -n 15 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 2>/dev/null || true; }

start() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  if command -v sinfo >/dev/null && ready; then say "already running"; sinfo; return 0; fi
  install_packages
  start_munge
  # Keep the config a running daemon has read (a mismatch only causes warnings, but is confusing).
  alive slurmctld || alive slurmd || write_conf
  # Both daemonise by default and write their pid files; restart them so they read the new config.
  # -c: a cold start that discards the saved job state; a throwaway local cluster needs none, and a
  # job left "completing" by an earlier instance would otherwise hold the node in state comp
  alive slurmctld || { say "starting slurmctld"; slurmctld -c || { show_logs; die "slurmctld failed"; }; }
  alive slurmd || { say "starting slurmd"; slurmd || { show_logs; die "slurmd failed"; }; }
  say "waiting up to ${TIMEOUT}s for node $NODE to become idle ..."
  local state t0=$SECONDS
  while (( SECONDS - t0 < TIMEOUT )); do
    state=$(node_state || true)
    case $state in
      idle|mix|alloc) say "ready (node $NODE: $state) after $((SECONDS - t0))s"; sinfo; return 0 ;;
      # down/drained e.g. after an unclean stop or an earlier config mismatch: put it back in service
      down*|drain*|fail*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
      # stuck completing a job of an earlier instance: take the node down and back into service
      comp*) if (( SECONDS - t0 > 10 )); then
               scontrol update nodename="$NODE" state=down reason="stuck completing" 2>/dev/null || true
               scontrol update nodename="$NODE" state=resume 2>/dev/null || true
             fi ;;
    esac
    if (( SECONDS - t0 > 5 )) && ! { alive slurmctld && alive slurmd; }; then
      show_logs; die "a slurm daemon died during start-up"
    fi
    sleep 1
  done
  sinfo >&2 || true; scontrol show node "$NODE" >&2 || true; show_logs
  die "node $NODE not idle after ${TIMEOUT}s (state: '${state:-unknown}')"
}

stop() {
  local d pid pids=()
  for d in slurmd slurmctld; do
    if pid=$(daemon_pid $d); then say "stopping $d (pid $pid)"; kill "$pid"; pids+=("$pid"); fi
  done
  # Wait for the processes, not the pid files: those vanish first, and slurmd can take ~20 s to exit
  # when it is retrying to reach a dead slurmctld (its port stays taken meanwhile).
  for _ in $(seq 60); do running "${pids[@]}" || break; sleep 0.5; done
  for pid in "${pids[@]}"; do running "$pid" && { say "killing pid $pid"; kill -9 "$pid"; }; done
  rm -f /run/slurmd.pid /run/slurmctld.pid
  say "stopped (munged left running)"
}

status() {
  alive slurmctld || die "slurmctld is not running"   # sinfo alone would retry for ~10 s first
  sinfo || die "sinfo failed"
  [[ $(node_state) =~ ^(idle|mix)$ ]]
}

case ${1:-} in
  start|stop|status) "$1" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
