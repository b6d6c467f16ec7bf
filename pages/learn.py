"""Learn PSL: three interactive explainers (batch composition, split point, stragglers)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.ui.charts import learn as charts_learn
from app.ui.views import learn, learn_paradigms, learn_split
from app.ui.widgets import show_chart, small_table
from psl_core.data import PartitionError
from psl_core.devices import StragglerModel, StragglerSpec, load_catalog
from psl_core.models import ARCHITECTURES, block_names_for
from psl_core.paradigms import PARADIGMS

SHOWN_STEPS = 30  # batches drawn in the composition chart
LEARN_TAB = "learn_tab"  # the open explainer (its tab label)


@st.cache_data(show_spinner=False)
def _federation(num_clients: int, alpha: float, seed: int) -> learn.ToyFederation:
    return learn.toy_federation(num_clients, alpha, seed)


@st.cache_data(show_spinner=False)
def _walks(num_clients: int, alpha: float, seed: int, batch_size: int, lds_c: float) -> dict:
    return learn.walk_all(_federation(num_clients, alpha, seed), batch_size, seed=seed, lds_c=lds_c)


@st.cache_data(show_spinner=False)
def _cut_costs(arch: str, batch_size: int):
    return learn_split.cut_cost_frame(arch, batch_size)


@st.cache_data(show_spinner=False)
def _straggler_runs(num_clients, devices, fraction, factor, transient, arch, cut, delta, batch_size, seed):
    federation = _federation(num_clients, 1.0, seed)
    system = learn.straggler_system(learn.assign_devices(list(devices), num_clients), arch, cut)
    spec = StragglerSpec(persistent_fraction=fraction, persistent_factor=factor, transient_prob=transient)
    runs = {
        "UGS": learn.straggler_epoch(federation, system, spec, "ugs", batch_size, seed=seed),
        f"LDS (δ = {delta:g})": learn.straggler_epoch(
            federation, system, spec, "lds", batch_size, seed=seed, lds_delta=delta
        ),
    }
    slow = StragglerModel(num_clients, spec, seed).persistent > 1
    return system, runs, slow


@st.fragment
def render_sampling() -> None:
    """Tab 1: the same partition under FLS, FPLS, UGS and LDS."""
    st.markdown(
        "In parallel split learning every step the server concatenates the clients' smashed data into **one "
        "global batch**. Which clients contribute how many samples is the *batch-composition schedule*. "
        "Under a non-IID partition, **FLS** (same count per client) and **FPLS** (count ∝ client size) keep "
        "drawing from the same clients until their data runs out, so late batches are small and skewed. "
        "**UGS** shuffles all sample owners together, so every global batch is a uniform sample of the pooled "
        "data. The *batch deviation* dev_t = Σ_c |p̂_t(c) − p(c)| measures how far a batch's label mix is "
        "from the whole training set's."
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    num_clients = c1.slider("Clients K", 2, 20, 8, key="s_k")
    alpha = c2.select_slider(
        "Partition α (Dirichlet)", [0.05, 0.1, 0.3, 1.0, 3.0, 100.0], 0.3, key="s_alpha",
        help="Non-IID-ness of the partition: small α = each class concentrated on few clients.",
    )  # fmt: skip
    batch_size = c3.select_slider("Global batch B", [8, 16, 32, 64, 128], 32, key="s_b")
    lds_c = c4.select_slider(
        "LDS c (concentration)", [0.25, 0.5, 1.0, 2.0, 10.0, 100.0], 1.0, key="s_c",
        help="LDS knob, not the partition α: c = 1 gives the same share variance as UGS; larger = steadier.",
    )  # fmt: skip
    seed = c5.number_input("Seed", 0, 10_000, 0, key="s_seed")
    try:
        federation = _federation(num_clients, alpha, int(seed))
        walks = _walks(num_clients, alpha, int(seed), batch_size, lds_c)
    except (PartitionError, ValueError) as exc:
        st.error(str(exc))
        return
    summary = learn.walk_summary(walks)
    small_table(summary, 3)
    longest = min(SHOWN_STEPS, max(walk.num_steps for walk in walks.values()))
    step = st.slider("Step t (walk through the first batches)", 0, longest - 1, 0, key="s_step")
    st.markdown(f"**Label mix of global batch t = {step}** (bars) vs. the training set p(c) (black ticks)")
    shares = learn.step_class_shares(walks, step, federation.label_distribution)
    show_chart(charts_learn.class_share_chart(shares), f"label_mix_step{step}", width="content")
    by = st.radio("Colour the first batches by", ["class", "client"], horizontal=True, key="s_by")
    show_chart(
        charts_learn.composition_chart(learn.composition_frame(walks, by, SHOWN_STEPS), by, step),
        f"batches_by_{by}",
        width="content",
    )
    st.markdown("**Deviation over one epoch** — FLS/FPLS epochs last until the largest client is empty.")
    show_chart(charts_learn.deviation_chart(learn.deviation_frame(walks), step), "deviation_by_method")
    st.caption(
        "LDS (latent Dirichlet sampling) is a **project definition**: the paper's code is unpublished. Here it "
        "runs without latency input (δ has no effect; see the stragglers tab). With c = 1 it matches UGS's "
        "share variance — its counts are about twice as variable, so its deviation is somewhat higher."
    )


@st.fragment
def render_split() -> None:
    """Tab 2: costs per cut and the smashed data as images."""
    st.markdown(
        "A cut index c puts blocks [0, c) on the client and the rest on the server. A **deeper cut** moves "
        "compute and memory onto the (weak) client, changes how many bytes of *smashed data* cross the link, "
        "and makes the smashed data less like the raw input. Costs below are measured on 8×8 digits input."
    )
    s1, s2 = st.columns(2)
    archs = [a for a in ARCHITECTURES if a != "resnet18"]
    arch = s1.selectbox(
        "Architecture", archs, index=archs.index("resnet8"), format_func=lambda a: ARCHITECTURES[a].title
    )
    split_batch = s2.select_slider("Client batch size (for memory)", [8, 16, 32, 64, 128], 32, key="p_b")
    names = block_names_for(arch)[:-1]
    cut_name = st.select_slider("Cut after block", names, names[0], key="p_cut")
    cut = names.index(cut_name) + 1
    costs = _cut_costs(arch, split_batch)
    show_chart(charts_learn.cut_cost_chart(costs, cut), f"cut_costs_{arch}", width="content")
    small_table(costs, 1)
    st.subheader("What the server sees: the smashed data as images")
    if arch not in learn_split.PRIVACY_ARCHS:
        st.info(f"{ARCHITECTURES[arch].title} flattens the image first: its activations have no pixel layout. "
                f"Choose {' or '.join(learn_split.PRIVACY_ARCHS)} to see activation images.")  # fmt: skip
        return
    with st.spinner("Training a small model on digits for a few seconds (once)…"):
        images, labels = learn_split.shown_samples()
        acts = learn_split.shown_activations(arch, cut)
    if acts.ndim == 4:
        channels = learn_split.top_channels(acts, 6)
        st.image(
            learn_split.activation_mosaic(images.numpy(), acts, channels, tile=56), clamp=True,
            caption=f"Each row: input digit ({', '.join(map(str, labels))}), then the 6 most varied of "
                    f"{acts.shape[1]} channels at the cut ({acts.shape[2]}×{acts.shape[3]} each), each scaled to [0, 1].",
        )  # fmt: skip
    else:
        st.info(
            f"At this cut the smashed data is a flat vector of {acts.shape[1]} numbers: no pixel layout left."
        )
    leakage = learn_split.shown_leakage(arch)
    show_chart(charts_learn.leakage_chart(leakage, cut), f"leakage_{arch}")
    st.caption(
        "Leakage measure: for each image, the largest |correlation| between the input and any channel "
        "upsampled to 8×8, averaged over the images shown (1 = a channel is a copy of the picture). The "
        "model was trained for 40 steps on digits (seeded). Low correlation is **not** a privacy "
        "guarantee: inversion attacks can still reconstruct inputs from deeper activations."
    )


@st.fragment
def render_stragglers() -> None:
    """Tab 3: one synchronous step per client, UGS vs LDS."""
    st.markdown(
        "A synchronous step is a chain of **phases with barriers**: every client computes its forward and "
        "uploads its smashed data, the server runs the global batch, every client downloads its gradient and "
        "runs its backward, and every client synchronises its client part. Each phase lasts as long as its "
        "**slowest active client**; everyone else waits (grey), so a straggler stretches the whole step. UGS "
        "gives every client a share ∝ its data, slow or not. **LDS** with latency aversion δ > 0 moves samples "
        "away from slow clients: shorter steps, at the price of a higher batch deviation (and LDS's counts "
        "vary about twice as much as UGS's)."
    )
    names = learn.device_labels(load_catalog())  # unique: two devices sharing a label got swapped
    t1, t2, t3 = st.columns(3)
    devices = t1.multiselect(
        "Client devices (assigned round robin)", list(names), ["rpi4b", "jetson_gpu", "laptop_m1"],
        format_func=names.get, key="t_dev",
    )  # fmt: skip
    k_strag = t1.slider("Clients K", 2, 16, 8, key="t_k")
    fraction = t2.slider("Persistent stragglers (fraction)", 0.0, 0.5, 0.25, 0.05, key="t_frac")
    factor = t2.slider("Their slowdown ×", 1.0, 20.0, 8.0, 0.5, key="t_factor")
    transient = t2.slider("Transient slowdown probability per step", 0.0, 0.5, 0.1, 0.05, key="t_trans")
    workload = t3.selectbox("Workload (CIFAR-10-sized input)", ["resnet8", "resnet18"], key="t_arch",
                            format_func=lambda a: ARCHITECTURES[a].title)  # fmt: skip
    t_names = block_names_for(workload)[:-1]
    t_cut = t3.selectbox("Cut after block", t_names, index=min(2, len(t_names) - 1), key="t_cut")
    delta = t3.slider("LDS δ (latency aversion)", 0.0, 3.0, 1.0, 0.25, key="t_delta")
    if not devices:
        st.warning("Choose at least one client device.")
        return
    try:
        system, runs, slow = _straggler_runs(
            k_strag, tuple(devices), fraction, factor, transient, workload, t_cut, delta, 32, 0
        )
    except ValueError as exc:
        st.error(str(exc))
        return
    max_step = min(run.walk.num_steps for run in runs.values()) - 1
    t_step = st.slider("Step t", 0, max_step, 0, key="t_step")
    slow_ids = np.flatnonzero(slow)
    st.caption(
        f"Global batch B = 32, partition α = 1.0 on the digits labels; server: the measured 8-vCPU VM. "
        f"Persistent stragglers: clients {', '.join(map(str, slow_ids)) or 'none'}."
    )
    max_ms = 1000 * max(float(run.timing.step_time[t_step]) for run in runs.values())
    cols = st.columns(len(runs))
    for col, (label, run) in zip(cols, runs.items()):
        timeline = learn.step_timeline(run, system, t_step)
        slowest = int(run.timing.slowest_client[t_step])
        title = f"{label}: step {t_step} takes {run.timing.step_time[t_step] * 1000:.0f} ms"
        with col:
            show_chart(charts_learn.timeline_chart(timeline, title, max_ms), f"step{t_step}_{label.split()[0]}",
                       key=f"export_timeline_{label.split()[0]}")  # fmt: skip
        col.caption(f"Slowest client: {slowest} ({system.device_ids[slowest]}); the others wait for it.")
    summary = learn.straggler_summary(runs, slow)
    small_table(summary, 3)
    st.caption(
        "LDS is a **project definition** (the paper's code is unpublished). Its latency input is each client's "
        "expected per-sample time × its persistent slowdown; a transient slowdown cannot be anticipated."
    )


@st.fragment
def render_paradigms() -> None:
    """Tab 4: PSL and its family: who holds what, what travels, when copies are averaged, what it costs."""
    names = learn_paradigms.PARADIGM_ORDER
    chosen = st.radio(
        "Paradigm", names, format_func=lambda n: PARADIGMS[n].title, horizontal=True, key="pd_name"
    )
    info = PARADIGMS[chosen]
    st.markdown(
        f"{info.summary}\n\n"
        f"- **A client holds:** {info.client_holds}. **The server holds:** {info.server_holds}.\n"
        f"- **Every step:** {info.per_step_traffic}.\n"
        f"- **Every round:** {info.per_round_traffic}.\n"
        f"- **Averaged:** {info.averaging}. **Model copies while training:** {info.copies}."
    )
    with st.expander("All six side by side"):
        small_table(learn_paradigms.roles_table(), 3)
    st.markdown(
        "**What one pass over the data costs** — the engine's own time, traffic and energy models on a "
        "toy federation (digits labels, partition α = 0.5), no training: one round of one local epoch with "
        "local batch b, PSL one epoch of uniform global sampling with B = K·b. hsfl puts the fastest half "
        "of the clients in FL mode."
    )
    catalog = load_catalog()
    c1, c2, c3 = st.columns(3)
    devices = c1.multiselect(
        "Client devices (assigned round robin)", list(catalog), ["rpi4b", "jetson_gpu"],
        format_func=lambda d: catalog[d].name.split(":")[0].split(";")[0], key="pd_dev",
    )  # fmt: skip
    k = c1.slider("Clients K", 2, 32, 8, key="pd_k")
    arch = c2.selectbox("Workload (CIFAR-10-sized input)", ["resnet8", "resnet18"], key="pd_arch",
                        format_func=lambda a: ARCHITECTURES[a].title)  # fmt: skip
    names_cut = block_names_for(arch)[:-1]
    cut = c2.selectbox("Cut after block", names_cut, index=min(1, len(names_cut) - 1), key="pd_cut")
    batch = c3.slider("Local batch b", 1, 64, 16, key="pd_b")
    if not devices:
        st.warning("Choose at least one client device.")
        return
    try:
        costs = learn_paradigms.toy_costs(k, devices, arch, cut, batch)
    except ValueError as exc:
        st.error(str(exc))
        return
    show_chart(charts_learn.paradigm_cost_chart(costs), f"paradigm_costs_{arch}")
    small_table(costs, 3)
    st.caption(
        "Split paradigms move smashed data every step (large at early cuts), FedAvg moves the whole model "
        "twice per round and computes all of it on the client; SL waits for one client after another. "
        "Energy counts each device's power while computing and while sending (device catalog; figures "
        "marked ASSUMED there are assumptions)."
    )


# Each tab is a fragment: moving a slider in one tab recomputes and redraws that tab only. The tabs
# are lazy (key + on_change): only the open one is computed and sent to the browser (the four together
# cost ~1 s of browser time per visit).
st.title("Learn PSL")
st.caption("Four small explainers that compute instantly in your browser session; no run is stored.")
EXPLAINERS = {
    "Why global sampling": render_sampling,
    "What the split point changes": render_split,
    "How stragglers stretch a step": render_stragglers,
    "PSL, SL, SplitFed, FedAvg, hybrid": render_paradigms,
}
for tab, render in zip(st.tabs(list(EXPLAINERS), key=LEARN_TAB, on_change="rerun"), EXPLAINERS.values()):
    if tab.open:
        with tab:
            render()
