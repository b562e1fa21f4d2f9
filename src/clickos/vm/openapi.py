"""The OpenAPI 3 description of the daemon's REST API (served at ``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from clickos import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_NAME = {"name": "name", "in": "path", "required": True, "description": "instance name",
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"}}
_HANDLER = {"name": "handler", "in": "path", "required": True,
            "description": "handler name as Click writes it: `element.handler`, `N.handler` or a global `handler`",
            "schema": {"type": "string"}}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {
            "status": {"type": "integer"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "string"},
                        "description": "for bad configurations, Click's `FILE:LINE: message` lines"},
            "control_code": {"type": "integer", "description": "ControlSocket reply code of a handler error"},
        }}},
    },
    "Limits": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "memory": {"oneOf": [{"type": "integer"}, {"type": "string"}],
                       "description": "memory limit: bytes, or a size such as `64M` (memory cgroup)"},
            "cpu": {"type": "number", "description": "CPU share, percent of one CPU (cpu cgroup quota)"},
            "pids": {"type": "integer", "description": "maximum processes and threads (pids cgroup)"},
            "nofile": {"type": "integer", "description": "open file limit (RLIMIT_NOFILE)", "default": 256},
            "cpu_seconds": {"type": "integer", "description": "CPU time limit (RLIMIT_CPU)"},
        },
    },
    "Restart": {
        "oneOf": [
            {"type": "string", "enum": ["no", "on-failure", "always"]},
            {"type": "object", "additionalProperties": False, "properties": {
                "policy": {"type": "string", "enum": ["no", "on-failure", "always"]},
                "max_restarts": {"type": "integer"},
                "backoff_initial": {"type": "number", "description": "seconds before the first restart"},
                "backoff_max": {"type": "number", "description": "longest wait between restarts, seconds"},
            }},
        ],
    },
    "CreateRequest": {
        "type": "object", "required": ["name", "config"],
        "properties": {
            "name": {"type": "string"},
            "config": {"type": "string", "description": "the Click configuration"},
            "filename": {"type": "string", "description": "file name used in error landmarks", "default": "config"},
            "limits": _ref("Limits"),
            "restart": _ref("Restart"),
            "start": {"type": "boolean", "default": True},
            "stats": {"type": "boolean", "default": False,
                      "description": "count packets into every element (costs a little per batch)"},
            "wait": {"type": "string", "enum": ["none", "ready", "first-packet"], "default": "ready",
                     "description": "answer once the router is built, or once its first packet went through"},
        },
    },
    "Memory": {
        "type": "object", "nullable": True,
        "properties": {k: {"type": "integer"} for k in ("rss_bytes", "pss_bytes", "uss_bytes", "swap_bytes")},
    },
    "Exit": {
        "type": "object", "nullable": True,
        "properties": {
            "time": {"type": "number"}, "pid": {"type": "integer"}, "code": {"type": "integer"},
            "signal": {"type": "string"}, "failure": {"type": "boolean"},
            "reason": {"type": "string", "description": "what happened, e.g. the memory limit was reached"},
            "cgroup": {"type": "object"},
        },
    },
    "Instance": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "state": {"type": "string",
                      "enum": ["created", "starting", "running", "stopping", "stopped", "exited", "crashed",
                               "failed", "backoff"]},
            "pid": {"type": "integer", "nullable": True},
            "uptime_s": {"type": "number", "nullable": True},
            "restarts": {"type": "integer"},
            "restart": _ref("Restart"),
            "limits": _ref("Limits"),
            "memory": _ref("Memory"),
            "last_exit": _ref("Exit"),
            "control_socket": {"type": "string", "nullable": True,
                               "description": "Unix socket speaking Click's ControlSocket protocol"},
            "log": {"type": "string"},
            "timing": {"type": "object", "description": "on create/start: ready_ms, first_packet_ms"},
        },
    },
    "InstanceDetail": {
        "allOf": [_ref("Instance"), {"type": "object", "properties": {
            "config": {"type": "string"},
            "events": {"type": "array", "items": {"type": "object"}},
            "isolation": {"type": "array", "items": {"type": "string"}},
            "problems": {"type": "array", "items": {"type": "string"}},
            "cgroup": {"type": "object", "nullable": True},
            "boot": {"type": "object", "nullable": True},
            "responsive": {"type": "boolean", "nullable": True},
            "elements": {"type": "array", "nullable": True, "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "class": {"type": "string"},
                "count": {"type": "integer"}, "packets": {"type": "integer"}}}},
        }}],
    },
    "HandlerResult": {
        "type": "object",
        "properties": {"handler": {"type": "string"}, "code": {"type": "integer"}, "value": {"type": "string"},
                       "warnings": {"type": "array", "items": {"type": "string"}}},
    },
}


def spec() -> dict[str, Any]:
    """The whole OpenAPI document."""
    inst = _json(_ref("Instance"), "the instance")
    e404 = _err("no such instance")
    return {
        "openapi": "3.0.3",
        "info": {"title": "clickos daemon", "version": __version__,
                 "description": "Create, reconfigure and destroy Click router instances (tiny VMs)."},
        "paths": {
            "/": {"get": {"summary": "daemon status", "responses": {"200": _json({"type": "object"}, "status")}}},
            "/openapi.json": {"get": {"summary": "this description",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI document")}}},
            "/instances": {
                "get": {"summary": "list instances",
                        "parameters": [{"name": "memory", "in": "query", "schema": {"type": "boolean"},
                                        "description": "read each instance's memory (default true)"}],
                        "responses": {"200": _json({"type": "array", "items": _ref("Instance")}, "instances")}},
                "post": {"summary": "create (and start) an instance",
                         "requestBody": {"required": True,
                                         "content": {"application/json": {"schema": _ref("CreateRequest")}}},
                         "responses": {"201": inst, "400": _err("bad request or bad configuration"),
                                       "409": _err("name taken"), "504": _err("did not boot in time")}},
            },
            "/instances/{name}": {
                "parameters": [_NAME],
                "get": {"summary": "show an instance",
                        "responses": {"200": _json(_ref("InstanceDetail"), "the instance"), "404": e404}},
                "delete": {"summary": "destroy an instance",
                           "responses": {"204": {"description": "destroyed"}, "404": e404}},
            },
            "/instances/{name}/config": {
                "parameters": [_NAME],
                "get": {"summary": "the running configuration",
                        "responses": {"200": _json({"type": "object"}, "configuration"), "404": e404}},
                "put": {"summary": "install a new configuration (hot-swap; state moves to same-named elements)",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["config"],
                            "properties": {"config": {"type": "string"}, "filename": {"type": "string"}}}}}},
                        "responses": {"200": inst, "400": _err("bad configuration"), "404": e404,
                                      "409": _err("not running")}},
            },
            "/instances/{name}/start": {
                "parameters": [_NAME],
                "post": {"summary": "start a stopped instance",
                         "responses": {"200": inst, "404": e404, "409": _err("already running")}},
            },
            "/instances/{name}/stop": {
                "parameters": [_NAME],
                "post": {"summary": "stop an instance (SIGTERM, then SIGKILL after the grace time)",
                         "responses": {"200": inst, "404": e404}},
            },
            "/instances/{name}/handlers/{handler}": {
                "parameters": [_NAME, _HANDLER],
                "get": {"summary": "call a read handler",
                        "parameters": [{"name": "param", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": _json(_ref("HandlerResult"), "value"), "404": e404,
                                      "409": _err("not running"), "422": _err("handler error"),
                                      "504": _err("instance not answering")}},
                "put": {"summary": "call a write handler",
                        "requestBody": {"content": {"application/json": {"schema": {
                            "type": "object", "properties": {"value": {"type": "string"}}}}}},
                        "responses": {"200": _json(_ref("HandlerResult"), "done"), "404": e404,
                                      "409": _err("not running"), "422": _err("handler error"),
                                      "504": _err("instance not answering")}},
            },
            "/instances/{name}/logs": {
                "parameters": [_NAME],
                "get": {"summary": "the instance's log (its standard output and error)",
                        "parameters": [{"name": "tail", "in": "query", "schema": {"type": "integer"}}],
                        "responses": {"200": _json({"type": "object", "properties": {
                            "name": {"type": "string"}, "log": {"type": "string"}}}, "log text"), "404": e404}},
            },
        },
        "components": {"schemas": _SCHEMAS},
    }
