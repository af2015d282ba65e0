"""The VPP connection's state machine: one table of states, inputs and outputs. Pure.

Modelled on Twisted's ClientService machine. LbSync (on the reactor) feeds it inputs
and carries out the outputs it returns, in order; an input a state has no row for is
ignored (a late connect result after a stop, a second loss report for one loss).

    disconnected --start--> connecting --connected--> connected
    connecting --failed--> backing-off --retry--> connecting
    connected --lost--> lost --closed--> backing-off
    any state --stop--> disconnected
"""

from __future__ import annotations

from enum import Enum


class ConnectionState(Enum):
    DISCONNECTED = "disconnected"  # not started, or stopped
    CONNECTING = "connecting"  # a connect is running on the VPP thread
    CONNECTED = "connected"
    LOST = "lost"  # the connection broke; it is being closed on the VPP thread
    BACKING_OFF = "backing-off"  # waiting to try again


class ConnectionInput(Enum):
    START = "start"
    CONNECTED = "connected"  # the connect succeeded
    FAILED = "failed"  # the connect failed
    LOST = "lost"  # a call found the connection broken (I/O error, failed ping, EOF)
    CLOSED = "closed"  # the broken connection is closed
    RETRY = "retry"  # the back-off timer fired
    STOP = "stop"


class Output(Enum):
    CONNECT = "connect"  # run the connect on the VPP thread
    ANNOUNCE_CONNECTED = "announce-connected"  # log, publish, start the loops, full sync
    REPORT_FAILURE = "report-failure"  # log the connect failure (once per distinct error)
    ANNOUNCE_LOST = "announce-lost"  # log, publish, stop the loops
    CLOSE = "close"  # close the connection on the VPP thread
    SCHEDULE_RETRY = "schedule-retry"
    CANCEL_RETRY = "cancel-retry"


S, In, Out = ConnectionState, ConnectionInput, Output

TRANSITIONS: dict[tuple[ConnectionState, ConnectionInput], tuple[ConnectionState, tuple[Output, ...]]] = {
    (S.DISCONNECTED, In.START): (S.CONNECTING, (Out.CONNECT,)),
    (S.CONNECTING, In.CONNECTED): (S.CONNECTED, (Out.ANNOUNCE_CONNECTED,)),
    (S.CONNECTING, In.FAILED): (S.BACKING_OFF, (Out.REPORT_FAILURE, Out.SCHEDULE_RETRY)),
    (S.CONNECTING, In.STOP): (S.DISCONNECTED, ()),
    (S.CONNECTED, In.LOST): (S.LOST, (Out.ANNOUNCE_LOST, Out.CLOSE)),
    (S.CONNECTED, In.STOP): (S.DISCONNECTED, ()),
    (S.LOST, In.CLOSED): (S.BACKING_OFF, (Out.SCHEDULE_RETRY,)),
    (S.LOST, In.STOP): (S.DISCONNECTED, ()),
    (S.BACKING_OFF, In.RETRY): (S.CONNECTING, (Out.CONNECT,)),
    (S.BACKING_OFF, In.STOP): (S.DISCONNECTED, (Out.CANCEL_RETRY,)),
}


class ConnectionMachine:
    def __init__(self) -> None:
        self.state = ConnectionState.DISCONNECTED

    def feed(self, what: ConnectionInput) -> tuple[Output, ...]:
        """Move on ``what``; the outputs to carry out (none when the state ignores it)."""
        row = TRANSITIONS.get((self.state, what))
        if row is None:
            return ()
        self.state, outputs = row
        return outputs

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED


__all__ = ["ConnectionInput", "ConnectionMachine", "ConnectionState", "Output", "TRANSITIONS"]
