#!/bin/bash
# The design of TensorRT-LLM's slurm_launch_draft.sh (newest), for the launch
# benchmark: background srun per GEN and CTX server, each followed by the
# `sleep 5` kept against the pyxis rootfs-lock race, DISAGG_SERVER in the
# background, BENCHMARK in the foreground; background steps are never waited
# for, the job ends when BENCHMARK does and Slurm kills what is left.
set -u
runScript="$SLURMRUN_BIN run"
nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
gpn=$(( gpusPerGenServer < gpusPerNode ? gpusPerGenServer : gpusPerNode ))
next=0
for i in $(seq 0 $((numGenServers - 1))); do
  export DISAGG_SERVING_TYPE=GEN_$i pytestCommand=$pytestCommandWorker
  slice=$(IFS=,; echo "${nodes[*]:$next:$nodesPerGenServer}"); next=$((next + nodesPerGenServer))
  srun --kill-on-bad-exit=1 -N "$nodesPerGenServer" -w "$slice" --ntasks=$((nodesPerGenServer * gpn)) \
    --ntasks-per-node=$gpn $runScript &> "$jobWorkspace/gen_server_$i.log" &
  sleep 5
done
gpn=$(( gpusPerCtxServer < gpusPerNode ? gpusPerCtxServer : gpusPerNode ))
for i in $(seq 0 $((numCtxServers - 1))); do
  export DISAGG_SERVING_TYPE=CTX_$i pytestCommand=$pytestCommandWorker
  slice=$(IFS=,; echo "${nodes[*]:$next:$nodesPerCtxServer}"); next=$((next + nodesPerCtxServer))
  srun --kill-on-bad-exit=1 -N "$nodesPerCtxServer" -w "$slice" --ntasks=$((nodesPerCtxServer * gpn)) \
    --ntasks-per-node=$gpn $runScript &> "$jobWorkspace/ctx_server_$i.log" &
  sleep 5
done
export DISAGG_SERVING_TYPE=DISAGG_SERVER pytestCommand=$pytestCommandDisaggServer
srun --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 $runScript &> "$jobWorkspace/disagg_server.log" &
export DISAGG_SERVING_TYPE=BENCHMARK pytestCommand=$pytestCommandBenchmark
if ! srun --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 $runScript &> "$jobWorkspace/benchmark.log"; then
  echo "Error: Benchmark failed"; scancel "$SLURM_JOB_ID"; exit 1
fi
echo "Disagg server and benchmark completed successfully"
echo "Total runtime: $SECONDS seconds"
