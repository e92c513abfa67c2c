"""Every recipe: its config builds a model (dry run), its scripts parse; the AED, Wav2Vec2 scratch and
fine-tune recipes run stages 1-6 on the tiny mini corpus; the AN4 recipe prepares real mini AN4."""

import subprocess
import tarfile

import pytest
import yaml
from test_recipe import needs_tts

from conftest import ROOT, SHARED, TINY_TRAIN_ARGS, copy_recipe, run_py
from ee_asr.models.registry import build_model
from ee_asr.train.config import load_config

EGS = ROOT / "egs"
RECIPES = sorted(p.parent.parent for p in EGS.glob("*/*/conf/train_*.yaml"))
CORPORA = ("mini_tts", "librispeech", "tedlium3", "an4")
KINDS = ("conformer_ctc_ee", "conformer_ctc_single", "conformer_aed_ee", "wav2vec2_ctc_ee_scratch",
         "wav2vec2_ctc_ee_finetune", "wav2vec2_ctc_finetune")


def test_every_corpus_has_every_recipe():
    assert {(r.parent.name, r.name) for r in RECIPES} >= {(c, k) for c in CORPORA for k in KINDS}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: f"{r.parent.name}/{r.name}")
def test_recipe_config_builds_a_model_and_scripts_parse(recipe):
    (config_file,) = (recipe / "conf").glob("train_*.yaml")
    assert f"--train-config conf/{config_file.name}" in (recipe / "run.sh").read_text()
    config = load_config(config_file)
    raw = config["encoder"] == "wav2vec2_ee"
    model = build_model({**config, "input_size": 1 if raw else 80, "vocab_size": 40, "normalize": None})
    assert model.exit_layers == [2, 4, 6, 8, 10, 12]
    for script in ("run.sh", "asr.sh", "local/data.sh"):
        assert (recipe / script).is_file(), script
        assert subprocess.run(["bash", "-n", str(recipe / script)]).returncode == 0, script
    run_sh = (recipe / "run.sh").read_text()
    assert ("--feats-type raw" in run_sh) == raw and ("--pretrained" in run_sh) == recipe.name.endswith("finetune")


def test_paper_sized_conformer_ctc_has_about_the_papers_parameter_count():
    config = load_config(ROOT / "conf" / "train_conformer_ctc_ee.yaml")
    model = build_model({**config, "input_size": 80, "vocab_size": 302, "normalize": None})
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert 30 < n < 36, n  # the paper: ~31.5M; six 300-token CTC heads and kernel 31 add a little


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Stage 1 of the tiny mini corpus, once, in a corpus dir whose recipes all share its data/."""
    work = copy_recipe(EGS / "mini_tts" / "conformer_ctc_ee", tmp_path_factory.mktemp("tiny") / "r")
    proc = subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--stop-stage", "1"], cwd=work,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work.parent


def mini_recipe(name, tmp_path, corpus):
    """A copy of a mini_tts recipe beside the others of the tiny corpus: it starts with data/ made."""
    return copy_recipe(EGS / "mini_tts" / name, corpus / f"{name}_{tmp_path.name}")


def run_recipe(recipe, *args):
    proc = subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", *args], cwd=recipe,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


TINY_W2V = ("--max-epoch 1 --set encoder_conf.hf_config.hidden_size=32 "
            "--set encoder_conf.hf_config.intermediate_size=64 --set encoder_conf.hf_config.num_attention_heads=2 "
            "--set encoder_conf.hf_config.conv_dim=[16,16,16,16,16]")


@pytest.mark.slow
@needs_tts
def test_wav2vec2_scratch_pretrain_and_fine_tune_recipes_run(tmp_path, tiny_data):
    scratch = mini_recipe("wav2vec2_ctc_ee_scratch", tmp_path, tiny_data)
    run_recipe(scratch, "--nbpe", "100", "--train-args", TINY_W2V, "--policy-grid", "entropy:0.1")
    exp = scratch / "exp" / "wav2vec2_ctc_ee_scratch_unigram100"
    assert "|decode_test/exit12|20|" in (exp / "RESULTS.md").read_text()
    assert " batch_bins=4000000 " in (exp / ".stage5.done").read_text()  # raw audio's default: samples
    assert (scratch / "dump" / "raw" / "train" / "feats.scp").is_file()
    wav = next(iter((scratch / "data" / "test" / "wav.scp").read_text().split()[1:2]))
    out = run_py("ee_asr.bin.transcribe", "--exp-dir", str(exp), "--policy", "fixed", "--threshold", "4", wav).stdout
    assert "\texit=4\t" in out
    run_py("ee_asr.bin.export_hf", "--exp-dir", str(exp), "--output", str(tmp_path / "hf"))
    assert (tmp_path / "hf" / "config.json").is_file()

    # self-supervised pre-training of the scratch recipe's architecture, without transcripts
    pretrain = mini_recipe("wav2vec2_pretrain", tmp_path, tiny_data)
    small = pretrain / "conf" / "tiny.yaml"
    config = yaml.safe_load((pretrain / "conf" / "arch_wav2vec2_small.yaml").read_text())
    config["encoder_conf"]["hf_config"].update(hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                               conv_dim=[16] * 5)
    small.write_text(yaml.safe_dump(config))
    proc = subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--arch-config", "conf/tiny.yaml",
                           "--max-updates", "3", "--pretrain-args", "--batch-bins 100000 --log-interval 1"],
                          cwd=pretrain, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    hf = pretrain / "exp" / "wav2vec2_pretrain" / "hf"
    assert "update 3/3" in (pretrain / "exp" / "wav2vec2_pretrain" / "pretrain.log").read_text()

    finetune = mini_recipe("wav2vec2_ctc_finetune", tmp_path, tiny_data)
    run_recipe(finetune, "--nbpe", "100", "--pretrained", str(hf), "--train-args", "--max-epoch 1",
               "--policy-grid", "fixed:4")
    exp = finetune / "exp" / "wav2vec2_ctc_finetune_unigram100"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["encoder_conf"]["hf_config"]["hidden_size"] == 32
    assert config["pretrained"] == str(hf.resolve())
    assert "initialised from" in (exp / "train.rank0.log").read_text()
    results = (exp / "RESULTS.md").read_text()
    assert all(f"|decode_test/exit{L}|20|" in results for L in (2, 4, 6, 8, 10, 12))

    missing = subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", "--pretrained",
                              str(tmp_path / "none"), "--tag", "other", "--stage", "4"], cwd=finetune,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "is not a directory" in missing.stderr


@pytest.mark.slow
@needs_tts
def test_aed_recipe_trains_and_decodes_with_joint_beam_search(tmp_path, tiny_data):
    aed = mini_recipe("conformer_aed_ee", tmp_path, tiny_data)
    run_recipe(aed, "--nbpe", "100", "--train-args", "--max-epoch 1",
               "--decode-args", "--beam-size 2 --maxlenratio 0.3", "--nbest-size", "2", "--policy-grid", "nbest:0.9")
    exp = aed / "exp" / "conformer_aed_ee_unigram100"
    history = (exp / "checkpoints" / "history.json").read_text()
    assert "att_exit12" in history and "ctc_exit2" in history
    records = [line for line in (exp / "decode_test" / "exits.jsonl").read_text().splitlines()]
    assert len(records) == 20 * 6 and all('"nbest_posterior"' in r for r in records)
    assert (exp / "decode_test" / "policy_nbest" / "thr_0.9" / "summary.json").is_file()
    assert " batch_bins=40000 " in (exp / ".stage5.done").read_text()  # fbank's default: frames


@pytest.mark.slow
@needs_tts
def test_ctc_recipe_trains_on_the_fly_with_speed_perturbation_and_decodes(tmp_path, tiny_data):
    ctc = mini_recipe("conformer_ctc_ee", tmp_path, tiny_data)
    run_recipe(ctc, "--nbpe", "100", "--feats-type", "fbank_online", "--speed-perturb-factors", "0.9 1.0 1.1",
               "--train-args", TINY_TRAIN_ARGS + " --set num_workers=2", "--policy-grid", "fixed:4")
    dump = ctc / "dump" / "fbank_online"
    assert not (ctc / "data" / "train_sp").exists() and not list(dump.rglob("*.ark"))
    assert (dump / "train" / "cmvn.npz").is_file() and not (dump / "test" / "feats.scp").exists()
    exp = ctc / "exp" / "conformer_ctc_ee_unigram100"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["speed_perturb_factors"] == [0.9, 1.0, 1.1] and config["num_workers"] == 2
    assert "2 workers" in (exp / "train.rank0.log").read_text()
    assert "|decode_test/exit4|20|" in (exp / "RESULTS.md").read_text()


MINI_AN4 = SHARED / "data" / "mini_an4" / "downloads.tar.gz"


@pytest.mark.skipif(not MINI_AN4.is_file(), reason=f"{MINI_AN4} (ESPnet's real mini AN4) is not on this machine")
def test_an4_recipe_prepares_features_and_tokens_from_real_mini_an4(tmp_path):
    with tarfile.open(MINI_AN4) as tar:
        tar.extractall(tmp_path / "mini", filter="data")
    datadir = tmp_path / "downloads"
    datadir.mkdir()
    with tarfile.open(datadir / "an4_sphere.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "mini" / "downloads" / "an4", arcname="an4")
    recipe = copy_recipe(EGS / "an4" / "conformer_ctc_ee", tmp_path / "an4")
    proc = subprocess.run(["./run.sh", "--local-data-opts", f"--download-dir {datadir} --download false",
                           "--stop-stage", "3"], cwd=recipe, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # features on the fly (the recipe's default for the real corpora): lengths and CMVN only, no feature archives
    test = recipe / "dump" / "fbank_online" / "test"
    assert len((test / "utt2num_frames").read_text().splitlines()) == 2 and not (test / "feats.scp").exists()
    assert (recipe / "data" / "token_list" / "char" / "bpe.model").is_file()
