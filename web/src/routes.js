// The route table: one page module per line (router.js sorts literal
// segments before parameters, so the order here does not matter).
import home from './pages/home.js';
import login from './pages/login.js';
import register from './pages/register.js';
import artist from './pages/artist.js';
import album from './pages/album.js';
import track from './pages/track.js';
import post from './pages/post.js';
import { newPost, editPost } from './pages/post-edit.js';
import search from './pages/search.js';

export default [
  home,
  login,
  register,
  artist,
  album,
  track,
  post,
  newPost,
  editPost,
  search,
];
