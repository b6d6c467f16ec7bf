"""New experiment: presets, the config form, previews that need no training, a sweep builder, Launch."""

from __future__ import annotations

import streamlit as st

from app.runs import submit, submit_sweep
from app.ui.charts import preview as charts
from app.ui.form import load_config_into_form, render_config_form
from app.ui.views import previews
from app.ui.views.planner import device_advice
from app.ui.views.presets import DEMO_PRESET, PRESET_HELP, PRESETS, SWEEP_PRESETS, preset_config, sweep_preset
from app.ui.views.sweep_builder import SweepSpecError, count_runs, parse_grid, parse_seeds
from app.ui.widgets import (
    PREFILL_CONFIG,
    PREFILL_SOURCE,
    SELECTED_RUN,
    ensure_worker,
    get_store,
    keep_undrawn,
    md_text,
    open_page,
    show_chart,
    show_user_text,
)
from psl_core.config import ConfigError, ExperimentConfig
from psl_core.data import DATASETS, load_labels, partition_labels
from psl_core.models import profile_arch

LAUNCHED = "ne:launched"  # (queued run ids, the launched config's key)
EDITING = "ne:editing"  # the run whose copy the form holds (re-run with edits), or None
SWEEP_OPEN = "ne:sweep_open"  # the sweep builder's expander (True while open)
SWEEP_KEYS = ("ne:sweep_preset", "ne:sweep_grid", "ne:sweep_seeds")
PREVIEW_TAB = "ne:preview_tab"  # the open preview tab (its label); only that one is computed


def launched_key(config: ExperimentConfig | None) -> str | None:
    return None if config is None else config.model_dump_json()


@st.cache_data(show_spinner="Loading the dataset…", max_entries=8)
def dataset_labels(name: str, data_dir: str | None, train_limit: int | None, seed: int):
    """(training labels, class names, input shape) — the previews never need the images."""
    ds = load_labels(name, data_dir=data_dir, train_limit=train_limit, seed=seed)
    return ds.y_train, list(ds.class_names), tuple(ds.input_shape)


@st.cache_data(show_spinner="Partitioning…", max_entries=16)
def partition_of(data_key: tuple, num_clients: int, scheme: str, params: tuple, seed: int):
    labels, class_names, _ = dataset_labels(*data_key)
    part = partition_labels(
        labels, num_clients, scheme, num_classes=len(class_names), seed=seed, **dict(params)
    )
    return part.counts, part.client_indices


def _preset_changed() -> None:
    load_config_into_form(preset_config(st.session_state["ne:preset"]))


def _sweep_preset_changed() -> None:
    name = st.session_state.get("ne:sweep_preset")
    if name:
        config, grid, seeds = sweep_preset(name)
        load_config_into_form(config)
        st.session_state["ne:sweep_grid"], st.session_state["ne:sweep_seeds"] = grid, seeds


def show_previews(config: ExperimentConfig) -> None:
    d, p = config.data, config.partition
    data_key = (d.dataset, d.data_dir, d.train_limit, config.seed)
    try:
        labels, class_names, input_shape = dataset_labels(*data_key)
        counts, client_indices = partition_of(
            data_key, p.num_clients, p.scheme, tuple(sorted(p.scheme_params().items())), config.seed
        )
        m = config.model
        profile = profile_arch(m.arch, input_shape, len(class_names), m.client_norm, m.server_norm)
        system, group_of = previews.client_system(profile, config)
        slowdown = previews.persistent_slowdown(config)
    except (ValueError, FileNotFoundError) as err:
        st.warning(f"No preview: {md_text(err)}")
        if not DATASETS[d.dataset].needs_files:
            return
        st.caption(DATASETS[d.dataset].how_to_get)
        return
    # Lazy tabs: only the open preview is computed and drawn (all four cost ~1 s per form change).
    tab_part, tab_model, tab_sched, tab_dev = st.tabs(
        ["Partition", "Model split", "Sampling", "Devices"], key=PREVIEW_TAB, on_change="rerun"
    )
    if tab_part.open:
        with tab_part:
            partition_preview(counts, class_names, p)
    if tab_model.open:
        with tab_model:
            model_preview(profile, config)
    if not (tab_sched.open or tab_dev.open):
        return
    sched = previews.schedule_preview(
        labels, client_indices, class_names, config, system=system, slowdown=slowdown
    )
    if tab_sched.open:
        with tab_sched:
            sampling_preview(sched, config)
    if tab_dev.open:
        with tab_dev:
            devices_preview(sched, config, system, group_of)


def partition_preview(counts, class_names, p) -> None:  # noqa: ANN001 - arrays and the partition section
    """Label counts per client and class."""
    frame, note = previews.partition_heatmap_frame(counts, class_names)
    show_chart(charts.partition_heatmap(frame), "partition_heatmap")
    sizes = counts.sum(axis=1)
    st.caption(
        (note + ". " if note else "")
        + f"{p.num_clients} clients, {int(sizes.sum())} samples; client sizes {int(sizes.min())}–{int(sizes.max())}; "
        "white cells: no sample of that class."
        + (" Partition α is the label-skew concentration of the partition, not the LDS c or δ."
           if p.scheme in previews.ALPHA_SCHEMES else "")
    )  # fmt: skip


def model_preview(profile, config: ExperimentConfig) -> None:  # noqa: ANN001 - a model profile
    """Where the cut falls: per-layer costs, per-group and per-device cuts."""
    m = config.model
    overview = previews.cut_overview(profile, config)
    c1, c2, c3 = st.columns(3)
    c1.metric("Client FLOPs / sample", f"{overview['client_flops_per_sample'] / 1e6:.2f} M",
              f"{overview['client_share_of_flops']:.0%} of the model", delta_color="off")  # fmt: skip
    c2.metric(f"Client memory (b = {overview['per_client_batch']})",
              f"{overview['client_memory_bytes'] / 2**20:.2f} MiB")  # fmt: skip
    c3.metric("Smashed bytes / sample", f"{overview['smashed_bytes_per_sample'] / 1024:.1f} KiB")
    split = previews.model_split_frame(profile, m.cut, m.cut2)
    show_chart(charts.model_split_chart(split), "model_split")
    st.dataframe(split, hide_index=True, width="stretch")
    st.markdown("**Per-group cuts** (cost only; training arithmetic is the same)")
    st.dataframe(previews.group_cuts_frame(profile, config), hide_index=True, width="stretch")
    st.markdown(
        "**Per-device cuts**: for each group, the cut with the shortest step for one of its clients "
        "alone that fits its memory. The **Split planner** page plans all groups together, with a "
        "shared uplink."
    )
    try:
        best, advice = device_advice(config)
    except ValueError as err:  # e.g. no cut fits a device's memory: the message says which
        st.warning(md_text(err, limit=600))
    else:
        st.write(md_text(", ".join(f"{group}: cut {cut}" for group, cut in best.items())))
        with st.expander("Per-cut table behind the advice"):
            st.dataframe(advice, hide_index=True, width="stretch")


def sampling_preview(sched, config: ExperimentConfig) -> None:  # noqa: ANN001 - a schedule preview
    """Batch composition and deviation of the first steps, chosen method beside UGS."""
    if config.sampling.method == "lds":
        st.info("LDS is a project definition (the paper's code is unpublished); with c = 1, δ = 0 it "
                "matches UGS's share variance, but its per-step counts are about 2× more variable.")  # fmt: skip
    st.markdown(
        f"**Batch composition of the first {previews.PREVIEW_STEPS} steps** (epoch 1, a preview draw)"
    )
    c1, c2 = st.columns(2)
    with c1:
        show_chart(charts.batch_composition_chart(sched.by_client, "client"), "batches_by_client")
    with c2:
        show_chart(charts.batch_composition_chart(sched.by_class, "class"), "batches_by_class")
    st.markdown("**Batch deviation over one epoch**, chosen method beside UGS")
    show_chart(charts.deviation_chart(sched.curves), "batch_deviation_epoch1")
    st.dataframe(sched.summary, hide_index=True, width="stretch")


def devices_preview(sched, config: ExperimentConfig, system, group_of) -> None:  # noqa: ANN001
    """Expected step times and the device mix."""
    times = sched.summary.set_index("method")
    cols = st.columns(len(times))
    for col, (method, row) in zip(cols, times.iterrows()):
        col.metric(f"Expected step time, {method.upper()}", f"{row['mean_step_time_s'] * 1e3:.0f} ms",
                   f"epoch ≈ {row['epoch_time_s']:.1f} s simulated", delta_color="off")  # fmt: skip
    mix = previews.device_mix_frame(config, system, group_of)
    show_chart(charts.device_mix_chart(mix), "device_mix")
    st.dataframe(mix, hide_index=True, width="stretch")
    show_chart(charts.step_time_chart(sched.curves), "step_time_epoch1")
    st.caption("Expected times use the analytic time model (methods §4): persistent stragglers included, "
               "transient slowdowns not (they are random per step).")  # fmt: skip


def sweep_builder(config: ExperimentConfig | None, tag_list: list[str]) -> None:
    """Grid × seeds launched as one sweep. Lazy: drawn only while open (its values are kept)."""
    box = st.expander("Sweep builder (grid × seeds)", key=SWEEP_OPEN, on_change="rerun")
    if not box.open:
        keep_undrawn(SWEEP_KEYS)
        return
    with box:
        st.selectbox("Start from a sweep preset", list(SWEEP_PRESETS), index=None, key="ne:sweep_preset",
                     on_change=_sweep_preset_changed, placeholder="Fills the form, the grid and the seeds…")  # fmt: skip
        if st.session_state.get("ne:sweep_preset"):
            st.caption(SWEEP_PRESETS[st.session_state["ne:sweep_preset"]].help)
        grid_text = st.text_area("Grid: one 'field.path: value1, value2' per line", key="ne:sweep_grid",
                                 placeholder="sampling.method: ugs, fls, fpls\nsampling.batch_size: 64, 128")  # fmt: skip
        st.session_state.setdefault("ne:sweep_seeds", "0")
        seeds_text = st.text_input("Seeds", key="ne:sweep_seeds", help="e.g. '0, 1, 2' or '0-4'")
        try:
            grid, seeds = parse_grid(grid_text), parse_seeds(seeds_text)
        except SweepSpecError as err:
            st.error(md_text(err, limit=600))
            grid = seeds = None
        if grid is not None:
            st.caption(f"{count_runs(grid, seeds)} runs: {len(grid)} grid field(s) × {len(seeds)} seed(s)")
        launch_sweep = st.button(
            "Launch sweep", disabled=config is None or grid is None, key="ne:launch_sweep"
        )
        if launch_sweep and config is not None and grid is not None:
            try:
                _, ids = submit_sweep(get_store(), config, grid, seeds, name=config.name, tags=tag_list)
            except ConfigError as err:
                st.error("Nothing was queued:")
                show_user_text(err)
            else:
                ensure_worker()
                st.session_state[LAUNCHED] = (ids, launched_key(config))


def show_launch(config: ExperimentConfig | None) -> None:
    tags = st.text_input("Tags (comma-separated)", key="ne:tags")
    tag_list = [t.strip() for t in tags.split(",") if t.strip()]
    if st.button("Launch", type="primary", disabled=config is None, key="ne:launch") and config is not None:
        try:
            run_id = submit(get_store(), config, tags=tag_list)
        except ConfigError as err:
            st.error("Nothing was queued:")
            show_user_text(err)
        else:
            ensure_worker()
            st.session_state[LAUNCHED] = ([run_id], launched_key(config))
    sweep_builder(config, tag_list)
    launched = st.session_state.get(LAUNCHED)
    # The message belongs to the config that was launched: an edit afterwards removes it.
    if launched and launched[1] != launched_key(config):
        st.session_state.pop(LAUNCHED)
    elif launched:
        ids = launched[0]
        st.success("Queued run" + ("s " if len(ids) > 1 else " ") + ", ".join(f"#{i}" for i in ids))
        if st.button(f"Open run #{ids[0]} in the Live monitor", key="ne:open_monitor"):
            open_page("monitor", query_params={"run": ids[0]}, **{SELECTED_RUN: ids[0]})


st.title("New experiment")
if PREFILL_CONFIG in st.session_state:  # a re-run with edits from another page
    load_config_into_form(st.session_state.pop(PREFILL_CONFIG))
    st.session_state[EDITING] = st.session_state.pop(PREFILL_SOURCE, None)
    st.session_state.pop(LAUNCHED, None)
if st.session_state.get(EDITING) is not None:
    source = st.session_state[EDITING]
    banner, close = st.columns([6, 1])
    banner.info(f"Editing a copy of run #{source}. Change what you need and press **Launch**: it is queued "
                "as a new run (the original is kept).")  # fmt: skip
    if close.button("Start fresh", key="ne:stop_editing", help="Back to the demo preset"):
        st.session_state[EDITING] = None
        load_config_into_form(preset_config(DEMO_PRESET))
        st.rerun()
st.selectbox("Start from a preset", list(PRESETS), index=None, key="ne:preset", on_change=_preset_changed,
             placeholder="Choose a preset to fill the form…", help="Fills every field; edit freely afterwards.")  # fmt: skip
if st.session_state.get("ne:preset"):
    st.caption(PRESET_HELP[st.session_state["ne:preset"]])
form_col, preview_col = st.columns([1, 1], gap="large")
with form_col:
    config_dict, parsed = render_config_form()
    show_launch(parsed)
with preview_col:
    st.subheader("Preview (no training)")
    if parsed is None:
        st.info("Fix the problems shown in the form to see the previews.")
    else:
        show_previews(parsed)
