//! Several processes training one run, one or more machines: `mpirun -np 4 shakeshake train`
//! in a build with `--features mpi` (`mpi_world`). Each process (rank) trains on its device
//! as one device among several in one process does (`replicas`); the ranks add up their
//! gradients through MPI. Rank 0 writes the run's files and prints; the others print only
//! their errors.

/// Environment variables a launcher sets for each process it starts: Open MPI's, then
/// MPICH's (Hydra) and PMI's.
const SIZE_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"];

/// How many processes a launcher (`mpirun`) started beside this one, it included; `None`
/// when none did.
pub fn launched_size() -> Option<usize> {
    SIZE_VARIABLES.iter().find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// This process's place among those a launcher started on this machine (its local rank).
pub fn local_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// The other processes of a run, as `replicas` uses them.
pub trait Ranks {
    /// This process's rank, 0 to `size() - 1`.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Adds every rank's `values` into every rank's, element by element (all the same length).
    fn sum(&self, values: &mut [f32]);
    /// Every rank's `values` (all the same length), rank 0's first.
    fn gather(&self, values: &[u64]) -> Vec<u64>;
    /// Ends every rank at once (after an error on this one: the others would wait for it).
    fn abort(&self, code: i32) -> !;
}

#[cfg(feature = "mpi")]
pub mod mpi_world {
    //! MPI's world through the `mpi` crate (Open MPI, MPICH): set up when `mpirun` (or a
    //! scheduler's launcher) started this process, not otherwise.

    use super::{Ranks, launched_size};
    use mpi::collective::SystemOperation;
    use mpi::traits::*;

    pub struct World {
        _universe: mpi::environment::Universe,
        world: mpi::topology::SimpleCommunicator,
    }

    /// MPI's world when a launcher started this process with others; `None` for a process of
    /// its own (a run without `mpirun`, or `mpirun -np 1`).
    pub fn join() -> anyhow::Result<Option<World>> {
        if launched_size().is_none_or(|size| size < 2) {
            return Ok(None);
        }
        // Only this (the main) thread calls MPI; wgpu's and the signal listener's threads do not.
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| anyhow::anyhow!("MPI could not be initialised (was it initialised already?)"))?;
        let world = universe.world();
        Ok(Some(World { _universe: universe, world }))
    }

    impl Ranks for World {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }

        fn size(&self) -> usize {
            self.world.size() as usize
        }

        fn sum(&self, values: &mut [f32]) {
            let mine = values.to_vec();
            self.world.all_reduce_into(&mine[..], values, SystemOperation::sum());
        }

        fn gather(&self, values: &[u64]) -> Vec<u64> {
            let mut all = vec![0u64; values.len() * self.size()];
            self.world.all_gather_into(values, &mut all[..]);
            all
        }

        fn abort(&self, code: i32) -> ! {
            self.world.abort(code)
        }
    }

    /// This process's stderr sent to /dev/null until dropped, then restored: how the ranks
    /// but 0 print only their errors.
    pub struct Quiet {
        saved: i32,
    }

    impl Quiet {
        pub fn begin() -> Quiet {
            // SAFETY: plain descriptor calls on descriptors this function opens or owns.
            unsafe {
                let saved = libc::dup(2);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
                libc::dup2(null, 2);
                libc::close(null);
                Quiet { saved }
            }
        }
    }

    impl Drop for Quiet {
        fn drop(&mut self) {
            // SAFETY: restores the descriptor `begin` saved, which nothing else closes.
            unsafe {
                libc::dup2(self.saved, 2);
                libc::close(self.saved);
            }
        }
    }
}
