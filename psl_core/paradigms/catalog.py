"""What each training paradigm is, in words a UI can show: who holds which part of the model, what
travels over the links, and when copies are averaged (SPEC §6). No torch here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParadigmInfo:
    name: str
    title: str
    short: str  # a label that fits a chart axis
    summary: str
    client_holds: str
    server_holds: str
    per_step_traffic: str
    per_round_traffic: str
    averaging: str
    parallel: bool  # clients work at the same time
    copies: str  # how many model copies exist while training


PARADIGMS: dict[str, ParadigmInfo] = {
    "psl": ParadigmInfo(
        "psl",
        "PSL — parallel split learning",
        "PSL",
        "Every step the server builds ONE global batch from all clients' smashed data (the sampling "
        "method decides how many samples each client sends), runs the server part once, and returns "
        "each client the gradient of its slice; the client part stays one shared model.",
        "the client part (blocks before the cut), one shared copy",
        "the server part, one copy",
        "smashed data + labels up, their gradients down, and the client-part gradient up / the "
        "aggregate down to keep the client copies equal",
        "nothing extra (there are no rounds: one epoch = one pass over the data)",
        "client-part gradients are summed every step (no model averaging)",
        True,
        "1 model",
    ),
    "sl": ParadigmInfo(
        "sl",
        "SL — sequential split learning",
        "SL",
        "One client at a time trains with the server on its own data for E local epochs, then hands the "
        "client part to the next client (client order shuffled every round).",
        "the client part, passed from client to client",
        "the server part, one copy",
        "smashed data + labels up, gradients down (one client at a time)",
        "the client part: downloaded by each client before its turn, uploaded after it",
        "none: there is only ever one model",
        False,
        "1 model",
    ),
    "sflv1": ParadigmInfo(
        "sflv1",
        "SplitFed v1",
        "SplitFed v1",
        "All clients train at the same time, each its OWN client-part copy with its OWN server-part copy; "
        "at the end of a round the client parts are averaged and the server parts are averaged.",
        "its own client-part copy",
        "one server-part copy per client",
        "smashed data + labels up, gradients down (all clients in parallel)",
        "every client uploads its client part and downloads the average",
        "client parts and server parts, weighted by data (N_k / N), every round",
        True,
        "K client parts + K server parts",
    ),
    "sflv2": ParadigmInfo(
        "sflv2",
        "SplitFed v2",
        "SplitFed v2",
        "Clients train their client-part copies at the same time; ONE server part serves their smashed "
        "batches one after the other (client order shuffled every round) and is updated after each; "
        "client parts are averaged at the end of a round.",
        "its own client-part copy",
        "one server part, updated client after client",
        "smashed data + labels up, gradients down",
        "every client uploads its client part and downloads the average",
        "client parts only, weighted by data, every round",
        True,
        "K client parts + 1 server part",
    ),
    "fedavg": ParadigmInfo(
        "fedavg",
        "FedAvg — federated averaging",
        "FedAvg",
        "A fraction of the clients (drawn every round) downloads the whole model, trains it locally for "
        "E epochs, and uploads it; the server averages the models.",
        "a full model copy",
        "the global model (no training)",
        "nothing: local steps need no server",
        "every participant downloads and uploads the whole model",
        "full models, weighted by data, every round",
        True,
        "one full model per participant",
    ),
    "hsfl": ParadigmInfo(
        "hsfl",
        "HSFL — hybrid split / federated learning",
        "HSFL",
        "Some clients (FL mode: by default the fastest) train the whole model locally like FedAvg; the "
        "others (SL mode) train through the cut with their own server-part copy like SplitFed v1. At the "
        "round end the server averages full models: the FL clients' and, for each SL client, its client "
        "part joined with its server part.",
        "FL mode: a full model copy; SL mode: its client-part copy",
        "a server-part copy per SL-mode client",
        "SL mode: smashed data up, gradients down; FL mode: nothing",
        "FL mode: the whole model down and up; SL mode: the client part down and up",
        "full models, weighted by data, every round",
        True,
        "one full model per client (split or not)",
    ),
}
