"""single_exit.sh: one asr.sh run per depth with that depth's blocks, exits, loss weights and the
first L of a per-block stochastic depth list (each block keeps its rate in the 12-layer model)."""

import shutil
import subprocess

from conftest import ROOT

RECIPE = ROOT / "egs" / "mini_tts" / "conformer_ctc_single"


def test_single_exit_script_passes_each_depth_its_blocks_exits_weights_and_depth_rates(tmp_path):
    work = tmp_path / "r"
    (work / "conf").mkdir(parents=True)
    shutil.copy(RECIPE / "single_exit.sh", work / "single_exit.sh")
    shutil.copy(RECIPE / "conf" / "train_conformer_ctc_single.yaml", work / "conf" / "train_conformer_ctc_single.yaml")
    # asr.sh stands in: it records the arguments of every run
    (work / "asr.sh").write_text('#!/bin/bash\nprintf "%s\\n" "$@" >> calls.txt\necho ---- >> calls.txt\n')
    (work / "asr.sh").chmod(0o755)
    proc = subprocess.run(["bash", "single_exit.sh", "--depths", "2 5", "--train-config",
                           "conf/train_conformer_ctc_single.yaml", "--train-args", "--max-epoch 1"],
                          cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    runs = [r.strip().splitlines() for r in (work / "calls.txt").read_text().split("----") if r.strip()]
    assert len(runs) == 2
    two, five = (r[r.index("--train-args") + 1] for r in runs)
    assert "encoder_conf.num_blocks=2 " in two and "exit_layers=[2] " in two and "exit_weighting=[1]" in two
    assert "stochastic_depth_rate=[0.02,0.03] " in two and two.endswith(" --max-epoch 1")
    assert "exit_layers=[2,4,5] " in five and "exit_weighting=[0,0,1]" in five
    assert "stochastic_depth_rate=[0.02,0.03,0.05,0.07,0.08] " in five
    assert runs[0][runs[0].index("--tag-suffix") + 1] == "_depth2"
