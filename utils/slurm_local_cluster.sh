#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and CI (not for production):
#   utils/slurm_local_cluster.sh start   install slurm-wlm + munge if missing (apt-get, root),
#                                        start munged, slurmctld and slurmd; print the SLURM_CONF line
#   utils/slurm_local_cluster.sh stop    stop the daemons this script started
#   utils/slurm_local_cluster.sh env     print `export SLURM_CONF=...` for the clients (sbatch, srun)
# No systemd is needed. The configuration lives in $SLURM_LOCAL_DIR (default /tmp/ee_asr_slurm),
# never in /etc/slurm, and uses its own ports, so a real Slurm on the machine is left alone.
# One node `localhost` with this machine's cores and memory, partition `debug`; process tracking
# by /proc (proctrack/linuxproc), no task binding (task/none), no accounting.
set -euo pipefail
dir=${SLURM_LOCAL_DIR:-/tmp/ee_asr_slurm}
ctld_port=${SLURM_LOCAL_PORT:-16817}
conf=$dir/slurm.conf

die() { echo "$0: $*" >&2; exit 1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and this system has no apt-get"
  [ "$(id -u)" -eq 0 ] || die "installing slurm-wlm and munge needs root: sudo apt-get install slurm-wlm munge"
  echo "installing slurm-wlm and munge (apt-get)" >&2
  # the packages' service start-up fails without systemd; policy-rc.d tells dpkg not to try
  local policy=/usr/sbin/policy-rc.d had_policy=false
  [ -e "$policy" ] && had_policy=true
  $had_policy || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; }
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge \
    >"$dir/apt.log" 2>&1 || rc=$?
  $had_policy || rm -f "$policy"
  if [ $rc -ne 0 ]; then  # stale package lists are the usual cause
    apt-get update -qq >>"$dir/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge \
      >>"$dir/apt.log" 2>&1 || die "apt-get install slurm-wlm munge failed; see $dir/apt.log"
  fi
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then return 0; fi
  mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile /etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
  fi
  local owner=root
  id munge >/dev/null 2>&1 && owner=munge
  chown -R "$owner": /run/munge /etc/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge; chmod 0755 /run/munge; chmod 0400 /etc/munge/munge.key
  if [ "$owner" = munge ]; then
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
  else
    munged --force --pid-file=/run/munge/munged.pid
  fi
  echo "$(cat /run/munge/munged.pid 2>/dev/null)" > "$dir/munged.started"
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "munged did not start"
}

write_conf() {
  local cpus mem
  cpus=$(OMP_NUM_THREADS='' OMP_THREAD_LIMIT='' nproc)  # nproc honours these: the node's cores, not a job's threads
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat > "$conf" <<CONF
ClusterName=eeasr
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerParameters=sched_interval=1
MinJobAge=30
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  mkdir -p "$dir"
  install_packages
  start_munge
  write_conf
  running "$dir/slurmctld.pid" || slurmctld -f "$conf"
  running "$dir/slurmd.pid" || slurmd -f "$conf" -N localhost
  export SLURM_CONF=$conf
  for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
      echo "export SLURM_CONF=$conf"; return 0
    fi
    sleep 0.2
  done
  sinfo >&2 || true
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "the node did not become idle in 20 s (logs above)"
}

stop() {
  local f pid
  for f in slurmd slurmctld; do
    if running "$dir/$f.pid"; then
      pid=$(cat "$dir/$f.pid"); kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  # munged only if this script started it (a system one stays)
  if [ -f "$dir/munged.started" ]; then
    pid=$(cat "$dir/munged.started")
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$dir/munged.started"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 1 ;;
esac
