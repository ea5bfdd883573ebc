"""Annotation sessions: one image, its predictor (the embedding and the chain of corrections), its objects.

A :class:`Session` owns one :class:`~isegm.inference.predictor.EMCClickPredictor`: the first
click of an object runs the backbone (``encode``), every click the correction head alone
(``correct``), and a shorter click list goes back to an earlier correction (undo). The model is
shared by all sessions and holds no per-image state. The :class:`SessionStore` bounds the number
of sessions, evicting the least recently used one that no request is using.
"""
from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from isegm.inference.predictor import EMCClickPredictor
from isegm.web.device import DeviceRunner
from isegm.web.errors import ApiError

__all__ = ["Click", "Prediction", "Session", "SessionStore"]

Click = Tuple[float, float, bool]
"""``(y, x, is_positive)`` in image pixels (row, column), as :meth:`EMCClickPredictor.predict` takes them."""


class Prediction(NamedTuple):
    """What :meth:`Session.predict` returns."""

    probs: np.ndarray   # H x W float32 in [0, 1], image resolution
    wait_s: float       # waiting for the device
    model_s: float      # the predictor: network calls, flip averaging, resizing back
    backbone: bool      # the backbone ran (the object's first click)


class Session:
    """The state of one image: current clicks, finished objects and their instance map.

    Not thread-safe by itself: hold :attr:`lock` around every call (the server does).

    Args:
        name: what clients see (the listed file name, or ``'upload'``).
        output_stem: stem of the annotation files, chosen by the server, never by a client
            (None: ``upload-<session id>``).
        image: ``H x W x 3`` uint8 RGB.
        predictor: a fresh predictor on the shared model.
    """

    def __init__(self, name: str, output_stem: Optional[str], image: np.ndarray, predictor: EMCClickPredictor):
        self.id = secrets.token_urlsafe(12)
        self.name = name
        self.output_stem = output_stem or f"upload-{self.id}"
        self.height, self.width = (int(v) for v in image.shape[:2])
        self.predictor = predictor
        predictor.set_image(image)
        self.lock = threading.Lock()
        self.clicks: List[Click] = []
        self.objects: List[Dict[str, object]] = []   # per finished object: {"clicks", "threshold"}
        self.instances = np.zeros((self.height, self.width), dtype=np.uint8)
        self.users = 0   # requests using the session; guarded by the store's lock

    def check_clicks(self, clicks: List[Click], max_clicks: int) -> None:
        """Raise a 422 :class:`ApiError` naming the first click outside the image, or too many clicks."""
        if len(clicks) > max_clicks:
            raise ApiError(422, "too_many_clicks", f"{len(clicks)} clicks; an object takes at most {max_clicks} "
                           "(finish it and start the next one)")
        for i, (y, x, _) in enumerate(clicks):
            if not (0 <= x < self.width and 0 <= y < self.height):
                raise ApiError(422, "click_outside_image", f"clicks[{i}] at x={x}, y={y} is outside the "
                               f"{self.width}x{self.height} image (0 <= x < {self.width}, 0 <= y < {self.height})")

    def predict(self, clicks: List[Click], runner: DeviceRunner) -> "Prediction":
        """The probabilities after ``clicks``, what ran and how long it took.

        Only the clicks that differ from the previous call's run the network, on the device's
        thread (``runner``: one model call at a time per device).
        """
        before = self.predictor.embedding
        probs, wait, model = runner.run(lambda: self.predictor.predict(clicks))
        self.clicks = list(clicks)
        # A new embedding means this call ran the backbone (a first click); otherwise only the head ran.
        backbone = self.predictor.embedding is not None and self.predictor.embedding is not before
        return Prediction(probs, wait, model, backbone)

    def probabilities(self) -> np.ndarray:
        """``H x W`` float32 probabilities after the current clicks (zeros before the first)."""
        return self.predictor.prev_prediction[0, 0].float().cpu().numpy()

    def finish(self, threshold: float, max_objects: int) -> int:
        """Keep the current object (its pixels ``p > threshold`` not taken by an earlier object) and start the next.

        Returns the object's id (1, 2, ...). The next object's first click runs the backbone
        again: the embedding depends on the first click.
        """
        if not self.clicks:
            raise ApiError(409, "no_clicks", "the current object has no clicks: click on it before finishing it")
        if len(self.objects) >= max_objects:
            raise ApiError(422, "too_many_objects", f"this image already has {len(self.objects)} objects, the most "
                           "one instance PNG holds")
        mask = self.probabilities() > threshold
        if not mask.any():
            raise ApiError(422, "empty_mask", f"the current object has no pixel above the threshold {threshold}")
        object_id = len(self.objects) + 1
        self.instances[mask & (self.instances == 0)] = object_id
        self.objects.append({"clicks": list(self.clicks), "threshold": float(threshold)})
        self.clicks = []
        self.predictor.reset()
        return object_id

    def release(self) -> None:
        """Drop the image and the network state (the session was evicted or deleted)."""
        self.predictor.reset_image()


class SessionStore:
    """At most ``max_sessions`` sessions, by id; the least recently used idle one is evicted first.

    A session with a request in flight (see :meth:`use`) is never evicted: when every session
    is in use, :meth:`add` refuses with a 503 :class:`ApiError`.
    """

    def __init__(self, max_sessions: int):
        self.max_sessions = int(max_sessions)
        self._sessions: "OrderedDict[str, Session]" = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def add(self, session: Session) -> List[str]:
        """Store ``session``; -> the ids of the sessions evicted to make room."""
        evicted: List[Session] = []
        with self._lock:
            while len(self._sessions) >= self.max_sessions:
                victim = next((s for s in self._sessions.values() if s.users == 0), None)
                if victim is None:
                    raise ApiError(503, "server_busy", f"all {self.max_sessions} sessions have a request in flight; "
                                   "retry in a moment (demo.py --max-sessions raises the limit)")
                del self._sessions[victim.id]
                evicted.append(victim)
            self._sessions[session.id] = session
            self.evicted += len(evicted)
        for victim in evicted:
            victim.release()
        return [s.id for s in evicted]

    @contextmanager
    def use(self, session_id: str) -> Iterator[Session]:
        """The session ``session_id``, marked most recently used and protected from eviction in the block.

        Raises:
            ApiError: 404 ``unknown_session`` (never created, deleted or evicted).
        """
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise ApiError(404, "unknown_session", f"no session {session_id!r}: it was deleted, evicted (at most "
                               f"{self.max_sessions} sessions are kept) or never created; open the image again")
            self._sessions.move_to_end(session_id)
            session.users += 1
        try:
            yield session
        finally:
            with self._lock:
                session.users -= 1

    def delete(self, session_id: str) -> Optional[Session]:
        """Remove a session; -> it, or None when there was none.

        A request still using it finishes normally; its memory goes with the last reference.
        """
        with self._lock:
            session = self._sessions.pop(session_id, None)
        return session
