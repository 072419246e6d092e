"""Config composition and validation: typos and wrong types fail before anything runs."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ReadonlyConfigError

from jepa_agents.config import ConfigError, expand_sweeps
from jepa_agents.config.load import config_hash
from jepa_agents.train.config import compose


def test_default_config_is_typed_and_read_only():
    cfg = compose([])
    assert cfg.env.name == "torch/cartpole_swingup"
    assert cfg.agent.name == "sac"
    assert cfg.run_dir.startswith("runs/")
    with pytest.raises(ReadonlyConfigError):
        cfg.seed = 3  # never mutated at runtime


def test_overrides_apply_and_convert_types():
    cfg = compose(["seed=7", "train.total_env_steps=1234", "env=dmc/cartpole_swingup"])
    assert cfg.seed == 7 and cfg.train.total_env_steps == 1234 and cfg.env.name == "dmc/cartpole_swingup"


@pytest.mark.parametrize(
    "override,named",
    [
        ("agent.lrr=1", "lrr"),
        ("train.totl_env_steps=5", "totl_env_steps"),
        ("sed=1", "sed"),
        ("world_model.regulariser=vicreg", "regulariser"),
    ],
)
def test_unknown_key_names_key_and_valid_keys(override, named):
    with pytest.raises(ConfigError) as err:
        compose([override])
    message = str(err.value)
    assert named in message and "Valid keys" in message


def test_unknown_group_choice_lists_choices():
    with pytest.raises(ConfigError) as err:
        compose(["env=torch/cartpol_swingup"])
    assert "torch/cartpole_swingup" in str(err.value)


def test_wrong_type_names_key():
    with pytest.raises(ConfigError) as err:
        compose(["train.total_env_steps=lots"])
    assert "train.total_env_steps" in str(err.value)


def test_unknown_agent_name():
    with pytest.raises(ConfigError) as err:
        compose(["agent.name=nope"])
    assert "sac" in str(err.value)


def test_sweeps_need_multirun_and_expand_to_product():
    with pytest.raises(ConfigError, match="multirun"):
        compose(["seed=0,1"])
    jobs = expand_sweeps(["seed=0,1,2", "env=torch/cartpole_balance,torch/cartpole_swingup"])
    assert len(jobs) == 6 and ["seed=0", "env=torch/cartpole_balance"] in jobs


def test_config_hash_ignores_runtime_keys_only():
    a = compose(["run_dir=/tmp/a", "device=cpu"])
    b = compose(["run_dir=/tmp/b", "device=auto"])
    c = compose(["run_dir=/tmp/a", "seed=3"])
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_resume_with_a_different_config_is_refused(tmp_path):
    cfg = compose([f"run_dir={tmp_path}", "seed=1"])
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    resumed = compose([f"resume={tmp_path}"])
    assert resumed.seed == 1 and resumed.run_dir == str(tmp_path)
    assert compose([f"resume={tmp_path}", "seed=1", "device=cpu"]).seed == 1
    with pytest.raises(ConfigError) as err:
        compose([f"resume={tmp_path}", "seed=2"])
    assert "seed" in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        compose([f"resume={tmp_path / 'missing'}"])


@pytest.mark.parametrize("group", ["agent", "world_model", "train"])
def test_every_preset_of_a_group_composes(group):
    """Each YAML preset of the online trainer's groups composes into a valid config (a preset with a typo
    or an unknown key fails here, not in a user's run)."""
    presets = sorted(p.stem for p in (Path(__file__).parents[1] / "configs" / group).glob("*.yaml"))
    assert presets
    for name in presets:
        assert compose([f"{group}={name}"])[group] is not None, name


def test_sac_drq_differs_from_sac_in_the_learning_rates_only():
    base, drq = compose(["agent=sac"]).agent, compose(["agent=sac_drq"]).agent
    lrs = {"lr_actor", "lr_critic", "lr_encoder", "lr_temperature"}
    assert {k for k in base if base[k] != drq[k]} == lrs and all(drq[k] == 1e-3 for k in lrs)
