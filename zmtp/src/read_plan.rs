//! [`ReadPlan`]: how much room a connection's next read gets.
//!
//! Frames are cut from the read buffer without a copy, so a frame must end up
//! whole in one buffer. When the room left cannot hold the rest of the frame on
//! its way, the part already read moves to a buffer with room for all of it: a
//! copy of up to a read's worth of bytes, into memory the allocator may have to
//! fault in. Two rules keep that copy off the steady state:
//!
//! - A large frame on its way gets room for exactly its missing bytes, so its
//!   buffer ends where it ends and the next frame starts in a buffer of its own.
//! - That next buffer gets room for a frame as large as the last large one. A
//!   stream of 64 KiB messages used to read each frame's first 64 KiB (its header
//!   took the last bytes of room) and copy them to make room for its last nine:
//!   about 50 KB copied per message, 1.8 copies a message (counted in the read
//!   path, PUSH->PULL 64 KiB over tcp and ipc). With the room predicted, each frame
//!   is read into one buffer and never moved.
//!
//! The prediction is bounded ([`MAX_PREDICTED`], a 64 KiB message) and forgotten
//! once the connection is no longer busy, so an idle connection keeps no more than
//! before, and one huge frame does not make every later buffer huge.
//!
//! Each such buffer lives until the receiving code drops its message, so on
//! tokio's current-thread runtime, where the receiving code waits for the
//! connection's turn to end, the connection reads at most [`READ_TURN`] bytes
//! before it lets the others run (tokio's cooperative budget alone let it read 128
//! frames, 8 MiB, ahead of the receiver, which then freed them all at once: the
//! allocator handed the memory back and faulted it in again for the next burst).
//! Together with the spares (`read_buffers`) that cover one turn, PUSH->PULL 64 KiB
//! on the current-thread runtime went from 64-75 k to 82-92 k msg/s over tcp and
//! from 35-41 k to 52-54 k over ipc, page faults from 1 300-200 000 to about 320
//! per 40 000 messages, and the receiver's CPU per message fell by a third
//! (zmtp-bench, three runs each, alternating). On the multi-thread runtime the
//! receiving code runs beside the connection, and a yield there only cost a
//! worker's extra look at the kernel: PUSH->PULL 4 KiB 757 k -> 698 k msg/s.

/// The read buffer of a connection starts this small, so an idle connection holds
/// little memory (a broker may have tens of thousands), and doubles each time a read
/// fills it, up to [`READ_CHUNK`].
pub(crate) const FIRST_READ: usize = 1024;

/// The largest read: one read of a busy connection brings in up to this much.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Frames from this size on count as large: they get a buffer ending where they
/// end, and room for one as large is kept for the next.
const LARGE_FRAME: usize = READ_CHUNK / 2;

/// The most room predicted for the next frame: a 64 KiB message in its frame,
/// CURVE's box included. The buffer a prediction makes waits for the next read,
/// and a peer that sends one large frame and falls silent keeps it allocated; up to
/// this size that is no more than a busy connection's read buffer holds anyway (a
/// prediction up to 256 KiB let every such peer hold four times as much, with no
/// bound over all connections). Larger frames are read as they come; the copy
/// to make room for their rest is then a small part of them.
const MAX_PREDICTED: usize = READ_CHUNK + 256;

/// Bytes a connection reads before it lets the other tasks run once (see the
/// module docs): eight 64 KiB messages, half the spares' bytes.
const READ_TURN: usize = 512 * 1024;

/// How much room the next read of one connection gets (see the module docs).
#[derive(Debug)]
pub(crate) struct ReadPlan {
    /// Room for a read when no large frame is expected; doubles while reads fill it.
    read_size: usize,
    /// The whole size (header and body) of the last large frame that arrived, up to
    /// [`MAX_PREDICTED`]; 0 when none is expected.
    expected_frame: usize,
    /// The last read filled less than a quarter of its room.
    short_read: bool,
    /// Bytes read since the connection last let the others run.
    turn: usize,
    /// Whether it lets them run after [`READ_TURN`] bytes.
    takes_turns: bool,
}

/// What the engine does after a read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterRead {
    /// Goes on.
    Continue,
    /// Lets the other tasks run once ([`tokio::task::yield_now`]) before going on.
    Yield,
}

impl ReadPlan {
    /// The plan of a new connection; `takes_turns` when the code receiving its
    /// messages runs on its thread between its turns (tokio's current-thread
    /// runtime).
    pub(crate) fn new(takes_turns: bool) -> ReadPlan {
        ReadPlan {
            read_size: FIRST_READ,
            expected_frame: 0,
            short_read: false,
            turn: 0,
            takes_turns,
        }
    }

    /// Before a read: `buffered` bytes wait in the buffer (the start of the frame
    /// being read, or nothing: whole frames were cut), `room` bytes of capacity
    /// follow them, and `missing` more complete that frame (0: no frame, or its
    /// header is not whole yet). Returns how many bytes of room to make after the
    /// buffered ones, or `None` when the room there will do.
    pub(crate) fn room_to_make(
        &mut self,
        buffered: usize,
        room: usize,
        missing: usize,
    ) -> Option<usize> {
        if missing > 0 && buffered + missing >= LARGE_FRAME {
            self.expected_frame = if buffered + missing <= MAX_PREDICTED {
                buffered + missing
            } else {
                0
            };
        }
        if room >= missing.max(self.read_size / 4) {
            return None;
        }
        if missing > 0 && buffered + missing >= LARGE_FRAME {
            // Exactly the rest of a large frame: its buffer ends where it does.
            Some(missing)
        } else {
            Some(self.read_size.max(self.expected_frame))
        }
    }

    /// A read brought `n` bytes into `room`. A `paused` one (the socket had paused
    /// the peer; the read only watched for it leaving) does not grow the reads.
    pub(crate) fn after_read(&mut self, n: usize, room: usize, paused: bool) -> AfterRead {
        if n == room && !paused {
            self.read_size = (self.read_size * 2).min(READ_CHUNK);
        }
        self.short_read = n < room / 4;
        self.turn += n;
        if self.takes_turns && self.turn >= READ_TURN {
            self.turn = 0;
            AfterRead::Yield
        } else {
            AfterRead::Continue
        }
    }

    /// Whether the connection is no longer busy, so that its spare buffers can go
    /// back to the allocator: the last read was short, and no large frame is on its
    /// way (`buffered` and `missing` as for [`room_to_make`](Self::room_to_make)).
    /// A large frame arrives in pieces as the kernel gets them (over ipc, 32 KiB
    /// at a time), which is no sign of a quiet peer. True once per short read.
    pub(crate) fn is_quiet(&mut self, buffered: usize, missing: usize) -> bool {
        if !self.short_read || buffered + missing >= LARGE_FRAME {
            return false;
        }
        self.short_read = false;
        self.expected_frame = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole size of a 64 KiB body in a long frame: flags, 8-byte size, body.
    const FRAME_64K: usize = 9 + 64 * 1024;

    fn busy_plan() -> ReadPlan {
        let mut plan = ReadPlan::new(true);
        while plan.read_size < READ_CHUNK {
            let room = plan.read_size;
            assert_eq!(plan.after_read(room, room, false), AfterRead::Continue);
        }
        plan
    }

    #[test]
    fn reads_grow_from_small_while_they_fill_their_room() {
        let mut plan = ReadPlan::new(true);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(FIRST_READ));
        plan.after_read(FIRST_READ, FIRST_READ, false);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(2 * FIRST_READ));
        let plan = busy_plan();
        assert_eq!(plan.read_size, READ_CHUNK);
    }

    #[test]
    fn room_left_that_will_do_is_kept() {
        let mut plan = busy_plan();
        assert_eq!(plan.room_to_make(0, READ_CHUNK / 4, 0), None);
        // A small frame on its way whose rest fits.
        assert_eq!(plan.room_to_make(100, READ_CHUNK / 2, 400), None);
    }

    #[test]
    fn a_large_frame_on_its_way_gets_exactly_its_rest() {
        let mut plan = busy_plan();
        // Its header and the first 1000 bytes are in; the buffer has 10 bytes left.
        assert_eq!(
            plan.room_to_make(1000, 10, FRAME_64K - 1000),
            Some(FRAME_64K - 1000)
        );
    }

    #[test]
    fn after_a_large_frame_the_next_buffer_holds_one_as_large() {
        let mut plan = busy_plan();
        plan.room_to_make(READ_CHUNK, 0, FRAME_64K - READ_CHUNK);
        // The frame was cut; a fresh buffer for the next read.
        assert_eq!(plan.room_to_make(0, 0, 0), Some(FRAME_64K));
        // Its header alone came in (say): still room for all of it.
        assert_eq!(plan.room_to_make(5, 0, 0), Some(FRAME_64K));
    }

    #[test]
    fn a_huge_frame_is_not_predicted() {
        let mut plan = busy_plan();
        plan.room_to_make(READ_CHUNK, 0, 10 << 20);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(READ_CHUNK));
        // Nor one past a 64 KiB message: the room waits for a read that a silent
        // peer never sends, and no more than a read's worth may wait so.
        let mut plan = busy_plan();
        plan.room_to_make(READ_CHUNK, 0, 100 * 1024 - READ_CHUNK);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(READ_CHUNK));
        // A 64 KiB message sealed by CURVE (a MESSAGE command's 33 more bytes) is.
        let sealed = FRAME_64K + 33;
        let mut plan = busy_plan();
        plan.room_to_make(READ_CHUNK, 0, sealed - READ_CHUNK);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(sealed));
        // Nor does it keep an earlier prediction.
        let mut plan = busy_plan();
        plan.room_to_make(READ_CHUNK, 0, FRAME_64K - READ_CHUNK);
        plan.room_to_make(READ_CHUNK, 0, 10 << 20);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(READ_CHUNK));
    }

    #[test]
    fn a_quiet_connection_forgets_the_prediction() {
        let mut plan = busy_plan();
        plan.room_to_make(READ_CHUNK, 0, FRAME_64K - READ_CHUNK);
        assert!(!plan.is_quiet(0, 0), "the last read filled its room");
        plan.after_read(100, FRAME_64K, false);
        assert!(plan.is_quiet(0, 0));
        assert!(!plan.is_quiet(0, 0), "once per short read");
        assert_eq!(plan.room_to_make(0, 0, 0), Some(READ_CHUNK));
    }

    #[test]
    fn a_large_frame_arriving_in_pieces_is_no_quiet_peer() {
        let mut plan = busy_plan();
        plan.after_read(4096, FRAME_64K, false);
        assert!(!plan.is_quiet(4096, FRAME_64K - 4096));
        // Its end comes short too, and then the peer says nothing more.
        plan.after_read(9, FRAME_64K - 4096, false);
        assert!(plan.is_quiet(0, 0));
    }

    #[test]
    fn a_paused_read_does_not_grow_the_reads() {
        let mut plan = ReadPlan::new(true);
        plan.after_read(FIRST_READ, FIRST_READ, true);
        assert_eq!(plan.room_to_make(0, 0, 0), Some(FIRST_READ));
        plan.after_read(1, FIRST_READ, true);
        assert!(plan.is_quiet(0, 0));
    }

    #[test]
    fn the_connection_lets_the_others_run_once_a_turn_is_read() {
        let mut plan = busy_plan();
        let mut read = 0;
        while plan.after_read(READ_CHUNK, READ_CHUNK, false) == AfterRead::Continue {
            read += READ_CHUNK;
            assert!(read < READ_TURN, "no yield after {read} bytes");
        }
        // A new turn starts.
        assert_eq!(
            plan.after_read(READ_CHUNK, READ_CHUNK, false),
            AfterRead::Continue
        );
    }

    #[test]
    fn without_turns_the_connection_reads_on() {
        let mut plan = ReadPlan::new(false);
        for _ in 0..2 * READ_TURN / READ_CHUNK {
            assert_eq!(
                plan.after_read(READ_CHUNK, READ_CHUNK, false),
                AfterRead::Continue
            );
        }
    }

    #[test]
    fn small_frames_on_their_way_get_a_whole_read() {
        let mut plan = busy_plan();
        assert_eq!(plan.room_to_make(100, 10, 400), Some(READ_CHUNK));
    }
}
