//! Lua scripts run where their keys live, and nowhere else.
//!
//! `redis::Script` answers a NOSCRIPT (a node restarted, or a replica that took over:
//! script caches are not replicated) with SCRIPT LOAD, which the cluster client sends
//! to every node, replicas included, and which waits for all of them. One stopped or
//! unreachable node, even a replica of another shard, then holds every such call for
//! the response timeout and fails it: `tests/redis_cluster.rs` lost its failovers'
//! calls this way whenever the new primary had never run the script. A [`Lua`] call
//! answers NOSCRIPT with EVAL of the body instead, which goes to the node of its keys
//! alone (and caches the script there), on one Redis as on a cluster.

use redis::{Cmd, FromRedisValue, RedisResult, Script, ServerErrorKind, ToRedisArgs};

/// A script: its body, and the SHA1 EVALSHA names it by.
pub struct Lua {
    code: String,
    script: Script,
}

impl Lua {
    pub fn new(code: &str) -> Self {
        Lua {
            code: code.to_owned(),
            script: Script::new(code),
        }
    }

    /// A call with `key` as its first key.
    pub fn key<T: ToRedisArgs>(&self, key: T) -> LuaCall<'_> {
        let mut call = LuaCall {
            lua: self,
            keys: Vec::new(),
            args: Vec::new(),
        };
        call.key(key);
        call
    }
}

/// One call of a [`Lua`] script: its keys, then its arguments.
pub struct LuaCall<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl LuaCall<'_> {
    pub fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// EVALSHA, and EVAL of the body when the node does not know the script yet.
    pub async fn invoke_async<T: FromRedisValue>(
        &self,
        conn: &mut super::RedisConn,
    ) -> RedisResult<T> {
        match self
            .command("EVALSHA", self.lua.script.get_hash())
            .query_async(conn)
            .await
        {
            Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.command("EVAL", &self.lua.code).query_async(conn).await
            }
            answer => answer,
        }
    }

    /// `name script numkeys keys… args…`: the cluster client routes it by its first key.
    fn command(&self, name: &str, script: &str) -> Cmd {
        let mut cmd = redis::cmd(name);
        cmd.arg(script)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_names_its_keys_before_its_arguments() {
        let lua = Lua::new("return 1");
        let mut call = lua.key("k1");
        call.arg(7).key("k2").arg("x");
        let packed = call
            .command("EVALSHA", lua.script.get_hash())
            .get_packed_command();
        let expected = redis::cmd("EVALSHA")
            .arg(lua.script.get_hash())
            .arg(2)
            .arg("k1")
            .arg("k2")
            .arg(7)
            .arg("x")
            .get_packed_command();
        assert_eq!(packed, expected);
    }
}
